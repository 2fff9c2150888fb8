"""Release sign-off: one result set per run, its Allure metadata, the GO / NO-GO summary, the HTML report."""
