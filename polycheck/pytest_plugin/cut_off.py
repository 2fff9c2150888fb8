"""A run cut off from its environment (`Run.cut_off`: nothing reachable, or a shared cause) says why once, in the
sign-off the terminal ends with (the same lines signoff.md starts with). Every other terminal line that would
repeat the reason (the header, the escalation notices, the audit records, the verdict lines) points there
instead. Only the terminal is shortened: the files, the audit log and the escalation's payload keep every word."""

from __future__ import annotations

SAID_IN_THE_SIGNOFF = "this runner cannot judge the environment (why: in the sign-off at the end)"


def header_line(env: str) -> str:
    """The header's notice that nothing will be judged, without the reason the sign-off gives."""
    return (f"polycheck: INCONCLUSIVE: this runner cannot judge env {env}: every check but the pre-deploy gates is "
            f"inconclusive (why: in the sign-off at the end)")


def pointing_to_signoff(text: str, cut_off: str | None) -> str:
    """`text` with the run's cut-off reason (when there is one) replaced by a pointer to the sign-off."""
    return text.replace(cut_off, SAID_IN_THE_SIGNOFF) if cut_off else text
