"""What the node's buttons do (each button's command calls one of these with its node)."""

from __future__ import annotations

from typing import Any

from .controller import controller_for


def analyse_range(node: Any) -> Any:
    """Analyse range: the Analyse range knob's frames, else the input's frame range."""
    return controller_for(node).analyse(node, title="VRMBG analyse")


def analyse_frame(node: Any) -> Any:
    """Analyse this frame: the current frame (computed forward from the last cached frame)."""
    return controller_for(node).analyse_frame(node)


def stop(node: Any) -> None:
    """Stop: cancel after the frame in flight."""
    controller_for(node).stop(node)


def clear_cache(node: Any) -> Any:
    """Clear cache: drop this node's cached frames for its current settings."""
    return controller_for(node).clear_cache(node)


def release_gpu(node: Any) -> Any:
    """Release GPU: unload the engine's models."""
    return controller_for(node).release_gpu(node)


def prune_cache(node: Any) -> Any:
    """Prune cache: drop this shot's frames cached for other settings."""
    return controller_for(node).prune_cache(node)


def set_keyframe(node: Any) -> Any:
    """Set keyframe here: the current frame takes the keys input's alpha."""
    return controller_for(node).set_keyframe(node, True)


def remove_keyframe(node: Any) -> Any:
    """Remove keyframe here."""
    return controller_for(node).set_keyframe(node, False)
