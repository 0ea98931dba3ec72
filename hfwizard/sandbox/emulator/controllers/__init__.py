"""Controllers that play kube-controller-manager and the kubelet against the emulator's store."""

from hfwizard.sandbox.emulator.controllers.player import FAIL_ANNOTATION, HOLD_ANNOTATION, ControllerPlayer

__all__ = ["FAIL_ANNOTATION", "HOLD_ANNOTATION", "ControllerPlayer"]
