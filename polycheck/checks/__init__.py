"""The checks' verdict logic: steps and blame, diagnoses, health, contract, rollout, post-deploy, canary, gates."""
