"""Rollback actions: one module per action behind `protocol.RollbackAction`, registered by name below.

Adding an action: write its module (a class with `name`, `settings` and `plan`), and give it its line in `REGISTRY`.
"""

from __future__ import annotations

from polycheck.rollback.actions.argo_abort import ArgoAbort
from polycheck.rollback.actions.argo_undo import ArgoUndo
from polycheck.rollback.actions.command import Command
from polycheck.rollback.actions.kubernetes_set_image import KubernetesSetImage
from polycheck.rollback.actions.kubernetes_undo import KubernetesUndo
from polycheck.rollback.actions.protocol import NoSettings, Plan, RollbackAction, RollbackActionError, RollbackActionSkipped, Target
from polycheck.rollback.actions.registry import ActionRegistry
from polycheck.rollback.actions.webhook import Webhook

REGISTRY = ActionRegistry(
    KubernetesUndo(),
    KubernetesSetImage(),
    ArgoAbort(),
    ArgoUndo(),
    Webhook(),
    Command(),
)

__all__ = ["REGISTRY", "ActionRegistry", "NoSettings", "Plan", "RollbackAction", "RollbackActionError",
           "RollbackActionSkipped", "Target"]
