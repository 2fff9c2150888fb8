"""Rollback actions: one module per action behind `protocol.RollbackAction`, registered by name below.

Adding an action: write its module (a class with `name`, `settings` and `plan`), and give it its line in `REGISTRY`.
"""

from __future__ import annotations

from .argo_abort import ArgoAbort
from .argo_undo import ArgoUndo
from .command import Command
from .kubernetes_set_image import KubernetesSetImage
from .kubernetes_undo import KubernetesUndo
from .protocol import NoSettings, Plan, RollbackAction, RollbackActionError, RollbackActionSkipped, Target
from .registry import ActionRegistry
from .webhook import Webhook

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
