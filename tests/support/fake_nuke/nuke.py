"""A small, faithful stand-in for Nuke's `nuke` module, for tests that cannot run Nuke.

Only what the VRMBG node uses is here, and every public name and signature exists in the
published API stubs (PyPI `types-nuke`); `tests/hosts/nuke/test_nuke_fake_faithful.py` checks that name by
name. Behaviour follows Nuke's documentation:

- nodes live in Groups (the root is one); `nuke.nodes.X()` creates inside the current group,
  `Group.begin()/end()` (or `with group:`) change it; node classes have their own knobs and
  `node['missing']` raises NameError while `node.knob('missing')` is None;
- callbacks (`addOnCreate`, `addKnobChanged`, `addUpdateUI`, `addBeforeFrameRender`, ...) run
  with `nuke.thisNode()`/`thisKnob()` set and honour `nodeClass`;
- `nuke.execute(write, first, last)` renders a Write: Read, Dot, Input/Output, Group, Switch,
  Copy, Premult and Write nodes are evaluated (pixels as stored in the files: no colour
  conversion is modelled), firing beforeRender/beforeFrameRender/afterFrameRender/afterRender;
  an exception in a callback fails the render, as in Nuke;
- `executeInMainThread` queues the call for the main thread; nodes and knobs may only be used
  on the main thread (a RuntimeError otherwise: real Nuke is not thread-safe there);
- stricter where real Nuke is (each rule cites Foundry's documentation where it is written):
  `nuke.execute` inside a running execute (a render callback) raises; `knobChanged` runs only
  while the node's panel is open; a script load or paste runs a Group's `onCreate` before its
  inner nodes exist; gizmos are Groups whose `Class()` is the gizmo's name;
- scripts save/open, nodeCopy/nodePaste and undo of a delete go through a private JSON form
  that keeps knob values, user knobs and connections and re-runs onCreate/onScriptLoad.

Test-only controls are private (leading underscore): `_reset`, `_process_main_thread`,
`_user_set`, `_user_connect`, `_set_gui`.
"""

from __future__ import annotations

import json
import os
import queue
import re
import threading
from typing import Any, Callable, Dict, List, Optional

# ------------------------------------------------------------------ constants (values arbitrary)
INVISIBLE = 0x400
STARTLINE = 0x1000
ENDLINE = 0x2000
READ_ONLY = 0x10000000
DO_NOT_WRITE = 0x200
NO_ANIMATION = 0x100
INPUTS = 0x2
EXPRESSIONS = 0x4
HIDDEN_INPUTS = 0x8
ALL = 0x0F

GUI = True
NUKE_VERSION_MAJOR = 14
NUKE_VERSION_MINOR = 0
NUKE_VERSION_STRING = "14.0v5"
EXE_PATH = "/usr/local/Nuke14.0v5/Nuke14.0"

_MAIN_THREAD = threading.main_thread()


def _main_only(what: str) -> None:
    """Nuke objects are main-thread only; a background thread must use executeInMainThread."""
    if threading.current_thread() is not _MAIN_THREAD:
        raise RuntimeError(f"{what} used off the main thread (use nuke.executeInMainThread)")


class GlobalsEnvironment:
    """`nuke.env`: Nuke's global environment (gui, version, ...)."""

    def __init__(self, *args, **kwargs) -> None:
        self._values: Dict[str, Any] = dict(*args, **kwargs)

    def get(self, *args, **kwargs) -> Any:
        return self._values.get(*args, **kwargs)

    def has_key(self, *args, **kwargs) -> Any:
        return args[0] in self._values

    def items(self, *args, **kwargs) -> Any:
        return list(self._values.items())

    def keys(self, *args, **kwargs) -> Any:
        return list(self._values.keys())

    def values(self, *args, **kwargs) -> Any:
        return list(self._values.values())

    def __contains__(self, other) -> Any:
        return other in self._values

    def __getitem__(self, index) -> Any:
        return self._values[index]

    def __setitem__(self, index, object) -> Any:
        self._values[index] = object

    def __len__(self) -> Any:
        return len(self._values)


env = GlobalsEnvironment(gui=True, NukeVersionMajor=NUKE_VERSION_MAJOR,
                         NukeVersionMinor=NUKE_VERSION_MINOR,
                         NukeVersionString=NUKE_VERSION_STRING, threads=2)


# ------------------------------------------------------------------ knobs

class Knob:
    """A node's setting: a name, a label, a value, flags, a tooltip and maybe an expression."""

    _default: Any = ""

    def __init__(self, *args, **kwargs) -> None:
        self._name = str(args[0]) if args else ""
        self._label = str(args[1]) if len(args) > 1 and args[1] is not None else self._name
        self._value: Any = self._default
        self._flags = 0
        self._tooltip = ""
        self._expression: Optional[str] = None
        self._keys: Dict[float, Any] = {}  # animation: frame -> value (linear in between)
        self._node: Optional[Node] = None
        self._visible = True
        self._enabled = True

    def Class(self) -> str:
        return type(self).__name__

    def name(self) -> str:
        return self._name

    def label(self) -> str:
        return self._label

    def setLabel(self, label: str) -> None:
        self._label = label

    def node(self) -> Node:
        return self._node  # type: ignore[return-value]

    def _convert(self, value: Any) -> Any:
        return value

    def _at(self, frame: float) -> Any:
        """The value at `frame`: the expression's, the animation's, else the value."""
        if self._expression is not None:
            return _evaluate_expression(self._expression, frame)
        if self._keys:
            times = sorted(self._keys)
            if frame <= times[0] or frame >= times[-1]:
                return self._keys[times[0] if frame <= times[0] else times[-1]]
            after = next(t for t in times if t >= frame)
            before = max(t for t in times if t <= frame)
            if after == before:
                return self._keys[after]
            share = (frame - before) / (after - before)
            return self._keys[before] + share * (self._keys[after] - self._keys[before])
        return self._value

    def value(self, index: int = 0) -> Any:
        _main_only(f"knob {self._name}")
        return self._at(_STATE.frame)

    def getValue(self, channel: int = 0) -> Any:
        return self.value()

    def getValueAt(self, frame: float, index: int = 0, view: Optional[str] = None) -> Any:
        """The value at `frame` (expressions and animation evaluated there)."""
        _main_only(f"knob {self._name}")
        return self._convert(self._at(float(frame)))

    def setValue(self, val: Any, chan: int = 0) -> bool:
        _main_only(f"knob {self._name}")
        if self._keys:  # an animated knob gets a key at the current frame
            self._keys[float(_STATE.frame)] = self._convert(val)
        else:
            self._value = self._convert(val)
        return True

    def setValueAt(self, val: Any, time: float, index: int = 0, view: Optional[str] = None) -> bool:
        """A key at `time` (the knob becomes animated)."""
        _main_only(f"knob {self._name}")
        self._keys[float(time)] = self._convert(val)
        return True

    def isAnimated(self, channel: int = 0) -> bool:
        return bool(self._keys) or self._expression is not None

    def setExpression(self, expression: str, index: int = 0, view: Optional[str] = None) -> bool:
        _main_only(f"knob {self._name}")
        self._expression = str(expression)
        return True

    def hasExpression(self, index: int = 0) -> bool:
        return self._expression is not None

    def clearAnimated(self, channel: int = 0) -> bool:
        self._expression = None
        self._keys = {}
        return True

    def setFlag(self, flag: int) -> None:
        self._flags |= int(flag)

    def clearFlag(self, flag: int) -> None:
        self._flags &= ~int(flag)

    def getFlag(self, flag: int) -> bool:
        return bool(self._flags & int(flag))

    def setTooltip(self, tooltip: str) -> None:
        self._tooltip = str(tooltip)

    def tooltip(self) -> str:
        return self._tooltip

    def setVisible(self, visible: bool) -> None:
        self._visible = bool(visible)

    def visible(self) -> bool:
        return self._visible

    def setEnabled(self, enabled: bool) -> None:
        self._enabled = bool(enabled)

    def enabled(self) -> bool:
        return self._enabled

    def toScript(self, quote: bool = False, context: Optional[Any] = None) -> str:
        if self._expression is not None:
            return "{{%s}}" % self._expression
        if self._keys:
            return "{{curve %s}}" % " ".join(f"x{t:g} {v}" for t, v in sorted(self._keys.items()))
        return str(self._value)


class Array_Knob(Knob):
    """A numeric knob."""

    _default: Any = 0.0

    def _convert(self, value: Any) -> Any:
        return float(value)

    def setRange(self, *args, **kwargs) -> Any:
        self._range = (float(args[0]), float(args[1]))

    def setValue(self, *args, **kwargs) -> Any:
        return Knob.setValue(self, args[0])

    def value(self, *args, **kwargs) -> Any:
        return Knob.value(self)

    def getValue(self, *args, **kwargs) -> Any:
        return self.value()


class Double_Knob(Array_Knob):
    """A floating-point number."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)


class Int_Knob(Array_Knob):
    """An integer."""

    _default = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)

    def _convert(self, value: Any) -> Any:
        return int(value)

    def setValue(self, val) -> bool:
        return Knob.setValue(self, val)

    def value(self) -> int:
        return int(Knob.value(self))


class Boolean_Knob(Array_Knob):
    """A check box."""

    _default = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if len(args) > 2:
            self._value = bool(args[2])

    def _convert(self, value: Any) -> Any:
        return bool(value)

    def setValue(self, b) -> bool:
        return Knob.setValue(self, b)

    def value(self) -> bool:
        return bool(Knob.value(self))


class Unsigned_Knob(Array_Knob):
    """A non-negative integer."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)


class ColorChip_Knob(Unsigned_Knob):
    """A colour as 0xRRGGBBAA (`tile_color`: the node's colour in the DAG; 0 = its default)."""

    _default = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)

    def _convert(self, value: Any) -> Any:
        return int(value)


class Enumeration_Knob(Unsigned_Knob):
    """A pulldown: `Enumeration_Knob(name, label, [values])`; value() is the chosen item."""

    _default = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._values: List[str] = [str(v) for v in (args[2] if len(args) > 2 else [])]
        self._value = self._values[0] if self._values else ""
        self._free = False  # colour space pulldowns: the items come from the OCIO config

    def _convert(self, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self._values[int(value)]
        text = str(value)
        if text not in self._values and not self._free:
            raise ValueError(f"{self._name}: {text!r} is not one of {self._values}")
        return text

    def setValue(self, *args, **kwargs) -> Any:
        return Knob.setValue(self, args[0])

    def value(self) -> Any:
        return str(Knob.value(self))

    def getValue(self, *args, **kwargs) -> Any:
        text = self.value()
        return float(self._values.index(text)) if text in self._values else 0.0

    def values(self) -> Any:
        return list(self._values)

    def setValues(self, *args, **kwargs) -> Any:
        self._values = [str(v) for v in args[0]]

    def numValues(self) -> int:
        return len(self._values)

    def enumName(self, n: int) -> str:
        return self._values[n]


class String_Knob(Knob):
    """A line of text."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if len(args) > 2:
            self._value = str(args[2])

    def _convert(self, value: Any) -> Any:
        return str(value)

    def setValue(self, val, view="default") -> None:
        Knob.setValue(self, val)

    def value(self, oc=None) -> str:
        return str(Knob.value(self))

    def getValue(self, *args, **kwargs) -> Any:
        return self.value()

    def getText(self, oc=None) -> str:
        return self.value()


class EvalString_Knob(String_Knob):
    """Text that may hold TCL expressions (not evaluated here)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)

    def evaluate(self, *args, **kwargs) -> Any:
        return self.value()


class File_Knob(EvalString_Knob):
    """A file name (sequences as `####` or `%04d`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)

    def setValue(self, *args, **kwargs) -> Any:
        return Knob.setValue(self, args[0])

    def value(self, *args, **kwargs) -> Any:
        return str(Knob.value(self))

    def getValue(self, *args, **kwargs) -> Any:
        return self.value()

    def getEvaluatedValue(self, *args, **kwargs) -> Any:
        return self.value()


class Multiline_Eval_String_Knob(EvalString_Knob):
    """Several lines of text."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)


class Text_Knob(Knob):
    """A read-only label: `Text_Knob(name, label, text)`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._value = str(args[2]) if len(args) > 2 else ""

    def setValue(self, *args, **kwargs) -> Any:
        return Knob.setValue(self, str(args[0]))

    def value(self, *args, **kwargs) -> Any:
        return str(Knob.value(self))


class Tab_Knob(Knob):
    """Starts a tab of the control panel."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)

    def setValue(self, *args, **kwargs) -> Any:
        return Knob.setValue(self, args[0])

    def value(self, *args, **kwargs) -> Any:
        return Knob.value(self)


class Script_Knob(String_Knob):
    """A button running a TCL/Python command."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)

    def command(self) -> str:
        return str(self._value)

    def setCommand(self, cmd) -> None:
        self._value = str(cmd)

    def setValue(self, cmd) -> None:
        self._value = str(cmd)

    def value(self) -> str:
        return str(self._value)

    def execute(self) -> None:
        _main_only(f"button {self._name}")
        _run_script(self.command(), self._node, self)


class PyScript_Knob(Script_Knob):
    """A button running Python: `PyScript_Knob(name, label, command)`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)


_KNOB_CLASSES = {cls.__name__: cls for cls in (
    Knob, Array_Knob, Double_Knob, Int_Knob, Boolean_Knob, Unsigned_Knob, ColorChip_Knob,
    Enumeration_Knob,
    String_Knob, EvalString_Knob, File_Knob, Multiline_Eval_String_Knob, Text_Knob, Tab_Knob,
    Script_Knob, PyScript_Knob)}


# ------------------------------------------------------------------ node classes and their knobs

_COMMON = [("String_Knob", "name", ""), ("String_Knob", "label", ""),
           ("Boolean_Knob", "disable", False), ("Boolean_Knob", "selected", False),
           ("ColorChip_Knob", "tile_color", 0),
           ("Int_Knob", "xpos", 0), ("Int_Knob", "ypos", 0),
           ("String_Knob", "knobChanged", ""), ("String_Knob", "onCreate", ""),
           ("String_Knob", "onDestroy", ""), ("String_Knob", "updateUI", ""),
           ("Knob", "inputChange", "")]
_ON_ERROR = ["error", "black", "checkerboard", "nearest frame"]
_DATATYPES = ["16 bit half", "32 bit float"]
_COMPRESSIONS = ["none", "Zip (1 scanline)", "Zip (16 scanlines)", "PIZ Wavelet (32 scanlines)",
                 "RLE", "B44", "DWAA", "DWAB"]
_CLASS_KNOBS: Dict[str, list] = {
    "Read": [("File_Knob", "file", ""), ("File_Knob", "proxy", ""), ("Int_Knob", "first", 1),
             ("Int_Knob", "last", 1), ("Int_Knob", "origfirst", 1), ("Int_Knob", "origlast", 1),
             ("Enumeration_Knob", "frame_mode", ["start at", "offset"]),
             ("String_Knob", "frame", ""), ("Enumeration_Knob", "colorspace", ["default"]),
             ("Boolean_Knob", "raw", False), ("Boolean_Knob", "premultiplied", False),
             ("Enumeration_Knob", "on_error", _ON_ERROR), ("PyScript_Knob", "reload", "")],
    "Write": [("File_Knob", "file", ""), ("Enumeration_Knob", "file_type",
                                            ["exr", "dpx", "tiff", "png", "jpeg", "mov"]),
              ("Enumeration_Knob", "datatype", _DATATYPES),
              ("Enumeration_Knob", "compression", _COMPRESSIONS),
              ("String_Knob", "channels", "rgb"), ("Enumeration_Knob", "colorspace", ["default"]),
              ("Boolean_Knob", "raw", False), ("Boolean_Knob", "create_directories", False),
              ("Boolean_Knob", "use_limit", False), ("Int_Knob", "first", 1),
              ("Int_Knob", "last", 1), ("String_Knob", "beforeRender", ""),
              ("String_Knob", "beforeFrameRender", ""), ("String_Knob", "afterFrameRender", "")],
    "Copy": [("String_Knob", "from0", "rgba.alpha"), ("String_Knob", "to0", "rgba.alpha")],
    "Premult": [("String_Knob", "channels", "rgb"), ("String_Knob", "alpha", "rgba.alpha")],
    "Switch": [("Double_Knob", "which", 0.0)],
    # time: TimeOffset shows input frame f - time_offset; FrameHold shows first_frame (every
    # `increment` frames when not 0); FrameRange only sets the range; Retime resamples
    "TimeOffset": [("Int_Knob", "time_offset", 0), ("Boolean_Knob", "reverse_input", False)],
    "FrameHold": [("Int_Knob", "first_frame", 1), ("Int_Knob", "increment", 0)],
    "FrameRange": [("Int_Knob", "first_frame", 1), ("Int_Knob", "last_frame", 100)],
    "Retime": [("Double_Knob", "speed", 1.0)],
    "Input": [("Int_Knob", "number", 0)],
    "Output": [], "Dot": [], "Group": [],
    "Root": [("Int_Knob", "first_frame", 1), ("Int_Knob", "last_frame", 100),
             ("Double_Knob", "fps", 24.0),
             ("Enumeration_Knob", "colorManagement", ["Nuke", "OCIO"]),
             ("Enumeration_Knob", "OCIO_config",
              ["nuke-default", "aces_1.2", "fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1",
               "fn-nuke_studio-config-v1.0.0_aces-v1.3_ocio-v2.1", "custom"]),
             ("File_Knob", "customOCIOConfigPath", ""),
             ("Enumeration_Knob", "workingSpaceLUT", ["linear"]),
             ("Enumeration_Knob", "floatLut", ["linear"]),
             ("Enumeration_Knob", "logLut", ["Cineon"]),
             ("Enumeration_Knob", "int8Lut", ["sRGB"]),
             ("Enumeration_Knob", "int16Lut", ["sRGB"]),
             ("File_Knob", "project_directory", "")],
}
_FREE_ENUMS = {("Read", "colorspace"), ("Write", "colorspace"), ("Root", "workingSpaceLUT"),
               ("Root", "floatLut"), ("Root", "logLut"), ("Root", "int8Lut"),
               ("Root", "int16Lut")}


def _make_knob(node_class: str, spec: tuple) -> Knob:
    kind, name, default = spec
    cls = _KNOB_CLASSES[kind]
    if kind == "Enumeration_Knob":
        knob: Knob = cls(name, name, list(default))
        knob._free = (node_class, name) in _FREE_ENUMS  # type: ignore[attr-defined]
    elif kind in ("Text_Knob", "String_Knob", "File_Knob", "PyScript_Knob"):
        knob = cls(name, name, default)
    else:
        knob = cls(name, name)
        knob._value = knob._convert(default)
    return knob


class Node:
    """A node: a class, a unique name in its group, knobs and inputs."""

    def __init__(self, *args, **kwargs) -> None:
        self._class = kwargs.pop("_class", type(self).__name__)
        self._parent: Optional[Group] = kwargs.pop("_parent", None)
        self._knobs: Dict[str, Knob] = {}
        self._user: List[str] = []
        self._inputs: List[Optional[Node]] = []
        self._deleted = False
        self._panel_open = False
        for spec in _COMMON + _CLASS_KNOBS.get(self._class, []):
            self._attach(_make_knob(self._class, spec))

    def _attach(self, knob: Knob) -> None:
        knob._node = self
        self._knobs[knob.name()] = knob

    def _alive(self) -> None:
        _main_only(f"node {self._knobs['name']._value}")
        if self._deleted:
            raise ValueError("A PythonObject is not attached to a node")

    def Class(self) -> str:
        return self._class

    def name(self) -> str:
        self._alive()
        return str(self._knobs["name"]._value)

    def fullName(self) -> str:
        self._alive()
        parent = self._parent
        if parent is None or isinstance(parent, Root):
            return self.name()
        return parent.fullName() + "." + self.name()

    def setName(self, name: str, uncollide: bool = True, updateExpressions: bool = False) -> None:
        self._alive()
        self._knobs["name"]._value = _unique_name(self._parent, name, self) if uncollide else name

    def knob(self, p, follow_link: bool = False) -> Optional[Knob]:
        self._alive()
        if isinstance(p, int):
            return list(self._knobs.values())[p]
        return self._knobs.get(p)

    def __getitem__(self, name: str) -> Knob:
        knob = self.knob(name)
        if knob is None:
            raise NameError(f"knob {name} does not exist")
        return knob

    def knobs(self) -> Dict[str, Knob]:
        self._alive()
        return dict(self._knobs)

    def allKnobs(self) -> List[Knob]:
        self._alive()
        return list(self._knobs.values())

    def numKnobs(self) -> int:
        return len(self._knobs)

    def addKnob(self, knob: Knob) -> None:
        self._alive()
        if knob.name() in self._knobs:
            raise ValueError(f"a knob called {knob.name()} already exists")
        self._attach(knob)
        self._user.append(knob.name())

    def removeKnob(self, knob: Knob) -> None:
        self._alive()
        self._knobs.pop(knob.name(), None)
        if knob.name() in self._user:
            self._user.remove(knob.name())

    def input(self, index: int) -> Optional[Node]:
        self._alive()
        node = self._inputs[index] if 0 <= index < len(self._inputs) else None
        return None if node is None or node._deleted else node

    def inputs(self) -> int:
        self._alive()
        count = 0
        for i, node in enumerate(self._inputs):
            if node is not None and not node._deleted:
                count = i + 1
        return count

    def maxInputs(self) -> int:
        if isinstance(self, Group) and not isinstance(self, Root):
            return len([n for n in self.nodes() if n.Class() == "Input"])  # type: ignore[attr-defined]
        return {"Read": 0, "Input": 0, "Root": 0, "Switch": 2, "Copy": 2}.get(self._class, 1)

    def setInput(self, i: int, node: Optional[Node]) -> bool:
        self._alive()
        while len(self._inputs) <= i:
            self._inputs.append(None)
        self._inputs[i] = node
        return True

    def connectInput(self, i: int, node: Optional[Node]) -> bool:
        return self.setInput(i, node)

    def dependencies(self, mask: int) -> List[Node]:
        self._alive()
        return [self.input(i) for i in range(self.inputs()) if self.input(i) is not None]  # type: ignore[misc]

    def dependent(self, mask: int, forceEvaluate: bool = True) -> List[Node]:
        self._alive()
        siblings = self._parent.nodes() if self._parent is not None else []
        return [n for n in siblings if self in n.dependencies(mask)]

    def parent(self) -> Group:
        return self._parent  # type: ignore[return-value]

    def firstFrame(self) -> int:
        if self._class == "Read":
            return self["first"].value()
        first = self.input(0)
        return first.firstFrame() if first is not None else root().firstFrame()

    def lastFrame(self) -> int:
        if self._class == "Read":
            return self["last"].value()
        first = self.input(0)
        return first.lastFrame() if first is not None else root().lastFrame()

    def isSelected(self) -> bool:
        return bool(self._knobs["selected"]._value)

    def setSelected(self, selected: bool) -> None:
        self._knobs["selected"]._value = bool(selected)

    def setXYpos(self, x: int, y: int) -> None:
        self._knobs["xpos"]._value, self._knobs["ypos"]._value = int(x), int(y)

    def xpos(self) -> int:
        return int(self._knobs["xpos"]._value)

    def ypos(self) -> int:
        return int(self._knobs["ypos"]._value)

    def showControlPanel(self, forceFloat: bool = False) -> None:
        """Open the panel: knobChanged runs with the dummy `showPanel` knob (Foundry,
        nuke.addKnobChanged, Nuke 13.2: "also called with dummy knobs when the control panel is
        opened")."""
        self._alive()
        if not self._panel_open:
            self._panel_open = True
            _fire("knobChangeds", self, Knob("showPanel"))

    def hideControlPanel(self) -> None:
        self._alive()
        if self._panel_open:
            _fire("knobChangeds", self, Knob("hidePanel"))
            self._panel_open = False

    def shown(self) -> bool:
        return self._panel_open

    def hasError(self) -> bool:
        return False

    def error(self) -> bool:
        return False

    def __eq__(self, other) -> bool:
        return self is other

    def __ne__(self, other) -> bool:
        return self is not other

    def __hash__(self) -> Any:
        return id(self)

    def __repr__(self) -> str:
        return f"<{self._class} {self._knobs['name']._value}>"


class Group(Node):
    """A node holding other nodes; its Input nodes are its inputs, its Output node its result."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("_class", "Group")
        super().__init__(*args, **kwargs)
        self._children: List[Node] = []

    def begin(self) -> Group:
        _main_only("Group.begin")
        _STATE.groups.append(self)
        return self

    def end(self) -> None:
        _main_only("Group.end")
        if len(_STATE.groups) > 1 and _STATE.groups[-1] is self:
            _STATE.groups.pop()

    def __enter__(self) -> Group:
        return self.begin()

    def __exit__(self, type, value, traceback) -> Any:
        self.end()

    def nodes(self) -> List[Node]:
        return [n for n in self._children if not n._deleted]

    def node(self, s: str) -> Optional[Node]:
        for n in self.nodes():
            if n.name() == s:
                return n
        return None

    def numNodes(self) -> int:
        return len(self.nodes())

    def output(self, *args, **kwargs) -> Any:
        for n in self.nodes():
            if n.Class() == "Output":
                return n
        return None


class Gizmo(Group):
    """A gizmo: a Group loaded from a .gizmo file; its `Class()` is the gizmo's own name
    (a studio's `StudioWrite`), never "Group". Test control: `_define_gizmo(name)`."""


class Precomp(Group):
    """A node that renders another script's output."""


class LiveGroup(Precomp):
    """A Group whose contents live in their own script file (Class() "LiveGroup")."""


class Root(Group):
    """The script: its frame range, fps and colour management live on its knobs."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["_class"] = "Root"
        super().__init__(*args, **kwargs)
        self._knobs["name"]._value = "Root"

    def firstFrame(self) -> int:
        return self["first_frame"].value()

    def lastFrame(self) -> int:
        return self["last_frame"].value()

    def fps(self) -> int:
        return int(self["fps"].value())


class Nodes:
    """`nuke.nodes.Read(file=..., ...)`: create a node of any class in the current group."""

    def __getattr__(self, item):
        if item.startswith("_"):
            raise AttributeError(item)

        def construct(*args, **knobs):
            return _create(item, knobs)
        return construct


nodes = Nodes()


# ------------------------------------------------------------------ progress and menus

class ProgressTask:
    """A progress bar that the user can cancel; it disappears when the object is deleted."""

    _instances: List[ProgressTask] = []  # every task made, for tests

    def __init__(self, *args, **kwargs) -> None:
        self._title = str(args[0]) if args else ""
        self._messages: List[str] = []
        self._progress: List[int] = []
        self._cancelled = False
        ProgressTask._instances.append(self)

    def isCancelled(self, *args, **kwargs) -> Any:
        return self._cancelled

    def setMessage(self, *args, **kwargs) -> Any:
        self._messages.append(str(args[0]))

    def setProgress(self, *args, **kwargs) -> Any:
        self._progress.append(int(args[0]))

    def _cancel(self) -> None:
        self._cancelled = True


class MenuItem:
    """A menu command."""

    def __init__(self, name: str, script: Any = "") -> None:
        self._name = name
        self._script = script

    def name(self) -> str:
        return self._name

    def script(self) -> str:
        return self._script if isinstance(self._script, str) else ""

    def invoke(self) -> None:
        if callable(self._script):
            self._script()
        else:
            _run_script(self._script, None, None)


class Menu(MenuItem):
    """A menu or toolbar: `addMenu`, `addCommand`, `findItem('A/B')`."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._items: List[MenuItem] = []

    def addMenu(self, *args, **kwargs) -> Any:
        existing = self.findItem(args[0])
        if isinstance(existing, Menu):
            return existing
        menu = Menu(args[0])
        self._items.append(menu)
        return menu

    def addCommand(self, *args, **kwargs) -> Any:
        path = str(args[0])
        command = args[1] if len(args) > 1 else kwargs.get("command", "")
        head, _, tail = path.rpartition("/")
        target = self.addMenu(head) if head else self
        item = MenuItem(tail, command)
        target._items.append(item)
        return item

    def findItem(self, name) -> Optional[Menu]:
        head, _, rest = str(name).partition("/")
        for item in self._items:
            if item.name() == head:
                if not rest:
                    return item  # type: ignore[return-value]
                return item.findItem(rest) if isinstance(item, Menu) else None
        return None

    def items(self) -> None:
        return list(self._items)  # type: ignore[return-value]


def menu(name: str) -> Menu:
    """The named menu bar ('Nuke', 'Nodes', ...)."""
    return _STATE.menus.setdefault(name, Menu(name))


# ------------------------------------------------------------------ callbacks

_CALLBACK_KINDS = ("onCreates", "onScriptLoads", "onScriptSaves", "onScriptCloses",
                   "onDestroys", "knobChangeds", "updateUIs", "beforeRenders",
                   "beforeFrameRenders", "afterFrameRenders", "afterRenders", "autolabels")


def _add(kind: str, call, args, kwargs, nodeClass) -> None:
    entry = (call, tuple(args), dict(kwargs), nodeClass)
    registry = _STATE.callbacks[kind]
    if entry not in registry:
        registry.append(entry)


def _remove(kind: str, call, args, kwargs, nodeClass) -> None:
    entry = (call, tuple(args), dict(kwargs), nodeClass)
    registry = _STATE.callbacks[kind]
    if entry in registry:
        registry.remove(entry)


def addOnCreate(call, args=(), kwargs={}, nodeClass="*") -> None:
    _add("onCreates", call, args, kwargs, nodeClass)


def removeOnCreate(call, args=(), kwargs={}, nodeClass="*") -> None:
    _remove("onCreates", call, args, kwargs, nodeClass)


def addOnScriptLoad(call, args=(), kwargs={}, nodeClass="Root") -> None:
    _add("onScriptLoads", call, args, kwargs, nodeClass)


def removeOnScriptLoad(call, args=(), kwargs={}, nodeClass="Root") -> None:
    _remove("onScriptLoads", call, args, kwargs, nodeClass)


def addOnScriptSave(call, args=(), kwargs={}, nodeClass="Root") -> None:
    _add("onScriptSaves", call, args, kwargs, nodeClass)


def removeOnScriptSave(call, args=(), kwargs={}, nodeClass="Root") -> None:
    _remove("onScriptSaves", call, args, kwargs, nodeClass)


def addOnScriptClose(call, args=(), kwargs={}, nodeClass="Root") -> None:
    _add("onScriptCloses", call, args, kwargs, nodeClass)


def removeOnScriptClose(call, args=(), kwargs={}, nodeClass="Root") -> None:
    _remove("onScriptCloses", call, args, kwargs, nodeClass)


def addOnDestroy(call, args=(), kwargs={}, nodeClass="*") -> None:
    _add("onDestroys", call, args, kwargs, nodeClass)


def removeOnDestroy(call, args=(), kwargs={}, nodeClass="*") -> None:
    _remove("onDestroys", call, args, kwargs, nodeClass)


def addKnobChanged(call, args=(), kwargs={}, nodeClass="*", node=None) -> None:
    _add("knobChangeds", call, args, kwargs, nodeClass)


def removeKnobChanged(call, args=(), kwargs={}, nodeClass="*", node=None) -> None:
    _remove("knobChangeds", call, args, kwargs, nodeClass)


def addUpdateUI(call, args=(), kwargs={}, nodeClass="*") -> None:
    _add("updateUIs", call, args, kwargs, nodeClass)


def removeUpdateUI(call, args=(), kwargs={}, nodeClass="*") -> None:
    _remove("updateUIs", call, args, kwargs, nodeClass)


def addBeforeRender(call, args=(), kwargs={}, nodeClass="Write") -> None:
    _add("beforeRenders", call, args, kwargs, nodeClass)


def removeBeforeRender(call, args=(), kwargs={}, nodeClass="Write") -> None:
    _remove("beforeRenders", call, args, kwargs, nodeClass)


def addBeforeFrameRender(call, args=(), kwargs={}, nodeClass="Write") -> None:
    _add("beforeFrameRenders", call, args, kwargs, nodeClass)


def removeBeforeFrameRender(call, args=(), kwargs={}, nodeClass="Write") -> None:
    _remove("beforeFrameRenders", call, args, kwargs, nodeClass)


def addAfterFrameRender(call, args=(), kwargs={}, nodeClass="Write") -> None:
    _add("afterFrameRenders", call, args, kwargs, nodeClass)


def removeAfterFrameRender(call, args=(), kwargs={}, nodeClass="Write") -> None:
    _remove("afterFrameRenders", call, args, kwargs, nodeClass)


def addAfterRender(call, args=(), kwargs={}, nodeClass="Write") -> None:
    _add("afterRenders", call, args, kwargs, nodeClass)


def removeAfterRender(call, args=(), kwargs={}, nodeClass="Write") -> None:
    _remove("afterRenders", call, args, kwargs, nodeClass)


def addAutolabel(call, args=(), kwargs={}, nodeClass="*") -> None:
    _add("autolabels", call, args, kwargs, nodeClass)


def removeAutolabel(call, args=(), kwargs={}, nodeClass="*") -> None:
    _remove("autolabels", call, args, kwargs, nodeClass)


def autolabel() -> Optional[str]:
    """The text the DAG draws on `thisNode()`: the first autolabel callback's non-None text,
    else the node's name and label (Foundry: addAutolabel "to produce the text to draw on it
    in the DAG")."""
    node = thisNode()
    for call, args, kwargs, wanted in list(_STATE.callbacks["autolabels"]):
        if wanted in ("*", node.Class()):
            text = call(*args, **kwargs)
            if text is not None:
                return text
    label = node["label"].value()
    return node.name() + ("\n" + label if label else "")


def _fire(kind: str, node: Optional[Node], knob: Optional[Knob] = None) -> None:
    """Run the callbacks of `kind` for `node` (errors propagate, as render callbacks do)."""
    node_class = node.Class() if node is not None else "Root"
    for call, args, kwargs, wanted in list(_STATE.callbacks[kind]):
        if wanted not in ("*", node_class):
            continue
        _STATE.this.append((node, knob))
        try:
            call(*args, **kwargs)
        finally:
            _STATE.this.pop()


def thisNode() -> Node:
    return _STATE.this[-1][0] if _STATE.this else root()  # type: ignore[return-value]


def thisKnob() -> Knob:
    return _STATE.this[-1][1] if _STATE.this else None  # type: ignore[return-value]


def thisGroup() -> Group:
    return _STATE.groups[-1]


def thisParent() -> Optional[Group]:
    node = thisNode()
    return node.parent() if node is not None else None


def executeInMainThread(call, args=(), kwargs={}) -> None:
    """Queue `call(*args, **kwargs)` for the main thread (it never runs at once)."""
    if not isinstance(args, tuple):
        args = (args,)
    _STATE.main_queue.put((call, args, dict(kwargs or {})))


def executeInMainThreadWithResult(call, args=(), kwargs={}):
    """Run `call` on the main thread and return its result (deadlocks if called there)."""
    if threading.current_thread() is _MAIN_THREAD:
        raise RuntimeError("executeInMainThreadWithResult called on the main thread")
    done = threading.Event()
    box: Dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call(*args, **(kwargs or {}))
        finally:
            done.set()
    executeInMainThread(run)
    done.wait()
    return box.get("value")


# ------------------------------------------------------------------ the script

class _State:
    def __init__(self) -> None:
        self.root = Root()
        self.groups: List[Group] = [self.root]
        self.this: List[tuple] = []
        self.frame = 1
        self.main_queue: "queue.Queue[tuple]" = queue.Queue()
        self.callbacks: Dict[str, list] = {k: [] for k in _CALLBACK_KINDS}
        self.menus: Dict[str, Menu] = {}
        self.clipboard = ""
        self.undo: List[str] = []
        self.script_name = ""
        self.layers: List[str] = ["rgb", "rgba", "alpha"]
        self.messages: List[str] = []
        self.executing = False
        self.gizmos: set = set()  # gizmo class names known to this session


_STATE = _State()


def root() -> Root:
    return _STATE.root


def _unique_name(parent: Optional[Group], base: str, node: Optional[Node] = None) -> str:
    taken = {n._knobs["name"]._value for n in (parent.nodes() if parent else []) if n is not node}
    if base and base not in taken:
        return base
    stem = re.sub(r"\d+$", "", base) or "Node"
    index = 1
    while f"{stem}{index}" in taken:
        index += 1
    return f"{stem}{index}"


def _create(node_class: str, knobs: Dict[str, Any], fire: bool = True) -> Node:
    _main_only("node creation")
    parent = _STATE.groups[-1]
    cls = {"Group": Group, "LiveGroup": LiveGroup}.get(node_class, Node)
    if node_class in _STATE.gizmos:
        cls = Gizmo
    node = cls(_class=node_class, _parent=parent)
    node._knobs["name"]._value = _unique_name(parent, knobs.pop("name", "") or node_class + "1")
    parent._children.append(node)
    inputs = knobs.pop("inputs", None)
    for name, value in knobs.items():
        node[name].setValue(value)
    if inputs:
        for i, upstream in enumerate(inputs):
            node.setInput(i, upstream)
    if fire:
        _fire("onCreates", node)
    return node


def createNode(typ: str, knobs: str = "", inpanel: bool = True) -> Node:
    """Create a node as the user does: connected under the selected node, which it replaces."""
    selected = selectedNodes()
    node = _create(typ, {})
    if selected and node.maxInputs():
        node.setInput(0, selected[0])
    for other in _STATE.groups[-1].nodes():
        other.setSelected(other is node)
    return node


def toNode(s: str) -> Optional[Node]:
    _main_only("toNode")
    group: Group = _STATE.root
    parts = s.split(".")
    for i, part in enumerate(parts):
        found = group.node(part)
        if found is None:
            return None
        if i == len(parts) - 1:
            return found
        if not isinstance(found, Group):
            return None
        group = found
    return None


def allNodes(*args, **kwargs) -> List[Node]:
    _main_only("allNodes")
    group = kwargs.get("group") or _STATE.groups[-1]
    recurse = bool(kwargs.get("recurseGroups", False))
    wanted = args[0] if args else kwargs.get("filter", "")
    found: List[Node] = []
    for node in group.nodes():
        if not wanted or node.Class() == wanted:
            found.append(node)
        if recurse and isinstance(node, Group):
            found.extend(allNodes(wanted, group=node, recurseGroups=True))
    return found


def selectedNodes(filter: Optional[str] = None) -> List[Node]:
    return [n for n in _STATE.groups[-1].nodes() if n.isSelected()]


def selectedNode() -> Node:
    chosen = selectedNodes()
    if not chosen:
        raise ValueError("no node selected")
    return chosen[-1]


def delete(n: Optional[Node]) -> None:
    if n is None:
        return
    _STATE.undo.append(json.dumps(_dump_nodes([n])))
    _destroy(n)


def _destroy(n: Node) -> None:
    _fire("onDestroys", n)
    if isinstance(n, Group):
        for child in n.nodes():
            _destroy(child)
    n._deleted = True


def undo() -> None:
    """Undo the last delete (the node comes back with its knobs and connections)."""
    if _STATE.undo:
        _load_nodes(json.loads(_STATE.undo.pop()), keep_names=True)


def frame(f: int = None) -> int:  # type: ignore[assignment]
    """The current frame; `frame(f)` moves the playhead (updateUI callbacks run in the GUI)."""
    if f is not None:
        _STATE.frame = int(f)
        if GUI:
            for node in allNodes(recurseGroups=True, group=_STATE.root):
                _fire("updateUIs", node)
    return _STATE.frame


def filename(node: Node, i: int = 0) -> Optional[str]:
    """The file knob of a Read/Write (with its `####`/`%04d` token), or None."""
    knob = node.knob("file")
    return knob.value() if knob is not None and knob.value() else None


def tcl(cmd: str, *args: str) -> str:
    """Only `tcl("add_layer", "name name.red ...")` is understood here."""
    if cmd == "add_layer":
        names = " ".join(args).strip("{} ").split()
        if names and names[0] not in _STATE.layers:
            _STATE.layers.append(names[0])
        return ""
    raise NotImplementedError(f"tcl {cmd!r} is not modelled by the test double")


def layers(node: Optional[Node] = None) -> List[str]:
    return list(_STATE.layers)


def message(prompt: str) -> None:
    """A message box (recorded: the test double has no screen)."""
    _STATE.messages.append(str(prompt))


def warning(message: str) -> None:
    pass


def scriptName() -> str:
    if not _STATE.script_name:
        raise RuntimeError("no script name: the script was never saved")
    return _STATE.script_name


# ------------------------------------------------------------------ saving, loading, copy/paste

def _dump_knob(knob: Knob) -> dict:
    record = {"class": knob.Class(), "name": knob.name(), "label": knob.label(),
              "value": knob._value, "flags": knob._flags, "tooltip": knob._tooltip,
              "expression": knob._expression, "keys": sorted(knob._keys.items())}
    if isinstance(knob, Enumeration_Knob):
        record["values"] = knob._values
    return record


def _dump_node(node: Node) -> dict:
    parent = node._parent
    record = {"class": node.Class(), "gizmo": isinstance(node, Gizmo), "name": node.name(),
              "knobs": {n: _dump_knob(k) for n, k in node._knobs.items() if n not in node._user},
              "user": [_dump_knob(node._knobs[n]) for n in node._user],
              "inputs": [(i.name() if i is not None and not i._deleted and i._parent is parent
                          else None) for i in node._inputs]}
    if isinstance(node, Group):
        record["children"] = _dump_nodes(node.nodes())
    return record


def _dump_nodes(chosen: List[Node]) -> list:
    return [_dump_node(n) for n in chosen]


def _restore_knob(knob: Knob, record: dict) -> None:
    knob._value = record["value"]
    knob._flags = record["flags"]
    knob._tooltip = record["tooltip"]
    knob._expression = record["expression"]
    knob._keys = {float(t): v for t, v in record.get("keys", [])}
    if "values" in record:
        knob._values = list(record["values"])  # type: ignore[attr-defined]


def _load_nodes(records: list, keep_names: bool) -> List[Node]:
    """Create nodes from records in the current group, connect them, then run onCreate."""
    made: List[tuple] = []
    for record in records:
        made.extend(_build(record, keep_names))
    for node, record, names in made:
        for i, name in enumerate(record["inputs"]):
            if name is not None:
                upstream = names.get(name) or node._parent.node(name)
                node.setInput(i, upstream)
    return [node for node, record, _ in made if node._parent is _STATE.groups[-1]]


def _build(record: dict, keep_names: bool) -> List[tuple]:
    if record.get("gizmo"):
        _STATE.gizmos.add(record["class"])
    node = _create(record["class"], {"name": record["name"] if keep_names else record["name"]},
                   fire=False)
    for name, knob_record in record["knobs"].items():
        if name in node._knobs and name != "name":
            _restore_knob(node._knobs[name], knob_record)
    for knob_record in record["user"]:
        knob = _KNOB_CLASSES[knob_record["class"]](knob_record["name"], knob_record["label"])
        _restore_knob(knob, knob_record)
        node.addKnob(knob)
    # A .nk is read top to bottom and each node is made as it is read: a Group's onCreate
    # runs when its line is read, before the nodes inside it (written after it, up to
    # `end_group`) exist, and before the script's onScriptLoad (Foundry, Python Developers
    # Guide, "Callbacks": onCreate "when any node is created", onScriptLoad "when a script
    # is loaded"). Pasting reads the same text.
    _fire("onCreates", node)
    made = [(node, record, {})]
    if isinstance(node, Group):
        node.begin()
        try:
            inner: List[tuple] = []
            for child in record.get("children", []):
                inner.extend(_build(child, True))
            names = {n.name(): n for n, _, _ in inner}
            made.extend((n, r, names) for n, r, _ in inner)
        finally:
            node.end()
    made[0] = (node, record, {})
    return made


def scriptSaveAs(filename: Optional[str] = None, overwrite: int = -1) -> None:
    """Write the script (root knobs and every node) to `filename`."""
    _main_only("scriptSaveAs")
    data = {"root": {n: _dump_knob(k) for n, k in _STATE.root._knobs.items()},
            "nodes": _dump_nodes(_STATE.root.nodes())}
    with open(filename, "w", encoding="utf-8") as handle:  # type: ignore[arg-type]
        json.dump(data, handle)
    _STATE.script_name = os.path.abspath(filename)  # type: ignore[arg-type]
    _fire("onScriptSaves", _STATE.root)


def scriptClear(*args, **kwargs) -> Any:
    """Close the script: every node goes (onScriptClose, onDestroy), the root is reset."""
    _fire("onScriptCloses", _STATE.root)
    for node in _STATE.root.nodes():
        _destroy(node)
    _STATE.root = Root()
    _STATE.groups = [_STATE.root]
    _STATE.script_name = ""


def scriptOpen(filename: Optional[str] = None) -> None:
    """Load a saved script: nodes come back (onCreate each), then onScriptLoad runs."""
    with open(filename, encoding="utf-8") as handle:  # type: ignore[arg-type]
        data = json.load(handle)
    for name, record in data["root"].items():
        if name in _STATE.root._knobs:
            _restore_knob(_STATE.root._knobs[name], record)
    _STATE.groups = [_STATE.root]
    _load_nodes(data["nodes"], keep_names=True)
    _STATE.script_name = os.path.abspath(filename)  # type: ignore[arg-type]
    _fire("onScriptLoads", _STATE.root)


def nodeCopy(s: str) -> None:
    """Copy the selected nodes ('%clipboard%' or a file name)."""
    _STATE.clipboard = json.dumps(_dump_nodes(selectedNodes()))


def nodePaste(s: str) -> Optional[Node]:
    """Paste copies of the copied nodes with new unique names; returns the last one."""
    pasted = _load_nodes(json.loads(_STATE.clipboard or "[]"), keep_names=False)
    return pasted[-1] if pasted else None


# ------------------------------------------------------------------ rendering

def execute(nameOrNode, start: int, end: int, incr: int = 1, views: List[str] = None,
            continueOnError: bool = False) -> None:  # type: ignore[assignment]
    """Render a Write node for frames start..end (callbacks before/after each frame)."""
    _main_only("execute")
    node = toNode(nameOrNode) if isinstance(nameOrNode, str) else nameOrNode
    if node is None or node.Class() != "Write":
        raise ValueError(f"{nameOrNode} is not a Write node")
    # One execute at a time: render callbacks run inside it (Foundry, Write node reference,
    # Python tab: beforeRender "run prior to starting rendering in execute()"), and Nuke
    # refuses an execute started there with this message (`nuke.executing()` tells).
    if _STATE.executing:
        raise RuntimeError("I'm already executing something else")
    saved = _STATE.frame
    _STATE.executing = True
    try:
        _fire("beforeRenders", node)
        for f in range(int(start), int(end) + 1, int(incr)):
            _STATE.frame = f
            _fire("beforeFrameRenders", node)
            _write_frame(node, f)
            _fire("afterFrameRenders", node)
        _fire("afterRenders", node)
    finally:
        _STATE.frame = saved
        _STATE.executing = False


def executing(f: Optional[float] = None) -> bool:
    """True while a Write is being executed (inside its render callbacks too)."""
    return _STATE.executing


def _expand(pattern: str, f: int) -> str:
    hashes = re.search(r"#+", pattern)
    if hashes:
        return pattern[:hashes.start()] + f"{f:0{len(hashes.group())}d}" + pattern[hashes.end():]
    printf = re.search(r"%0?(\d*)d", pattern)
    if printf:
        return pattern[:printf.start()] + (printf.group() % f) + pattern[printf.end():]
    return pattern


_EXR_TO_NUKE = {"R": "rgba.red", "G": "rgba.green", "B": "rgba.blue", "A": "rgba.alpha"}
_NUKE_TO_EXR = {v: k for k, v in _EXR_TO_NUKE.items()}


def _channel(name: str) -> str:
    """`rgba.alpha`, `matte.alpha` ... from a knob's text (`alpha` means rgba.alpha)."""
    return name if "." in name else "rgba." + name


def _render(node: Optional[Node], f: int) -> dict:
    """Pixels of `node` at frame f: {'size': (w, h), channel: 2-D float32 array}."""
    if node is None:
        return {"size": None}
    if node["disable"].getValueAt(f) and node.Class() not in ("Read", "Input", "Output"):
        return _render(node.input(0), f)
    kind = node.Class()
    if kind == "Read":
        return _read_pixels(node, f)
    if kind in ("Dot", "Write", "Output"):
        return _render(node.input(0), f)
    if kind == "Input":
        group = node.parent()
        return _render(group.input(node["number"].value()), f)
    if isinstance(node, Group):
        return _render(node.output(), f)  # type: ignore[attr-defined]
    if kind == "TimeOffset":
        offset = node["time_offset"].getValueAt(f)
        return _render(node.input(0), f + offset if node["reverse_input"].getValueAt(f)
                       else f - offset)
    if kind == "FrameHold":
        first, step = node["first_frame"].getValueAt(f), node["increment"].getValueAt(f)
        return _render(node.input(0), first + ((f - first) // step) * step if step else first)
    if kind == "FrameRange":
        return _render(node.input(0), f)
    if kind == "Switch":
        which = int(round(float(node["which"].getValueAt(f))))
        which = min(max(which, 0), max(node.inputs() - 1, 0))
        chosen = _render(node.input(which), f)
        if chosen.get("size") is None and which > 0:
            shape = _render(node.input(0), f).get("size")
            return {"size": shape}
        return chosen
    import numpy as np
    if kind == "Copy":
        b = dict(_render(node.input(0), f))
        a = _render(node.input(1), f)
        source, target = _channel(node["from0"].value()), _channel(node["to0"].value())
        size = b.get("size") or a.get("size")
        if size is None:
            return b
        blank = np.zeros((size[1], size[0]), np.float32)
        b["size"] = size
        b[target] = a.get(source, blank)
        return b
    if kind == "Premult":
        b = dict(_render(node.input(0), f))
        alpha = b.get(_channel(node["alpha"].value()))
        if alpha is not None:
            for name in ("rgba.red", "rgba.green", "rgba.blue"):
                if name in b:
                    b[name] = (b[name] * alpha).astype(np.float32)
        return b
    raise NotImplementedError(f"the test double cannot render {kind} nodes")


def _read_pixels(node: Node, f: int) -> dict:
    first, last = node["first"].value(), node["last"].value()
    f = min(max(f, first), last)  # hold the first/last frame outside the range
    path = _expand(node["file"].value(), f)
    if not os.path.isfile(path):
        if node["on_error"].value() == "error":
            raise RuntimeError(f"{node.fullName()}: cannot open {path} for frame {f}")
        return {"size": None}
    import numpy as np
    import OpenImageIO as oiio
    buf = oiio.ImageBuf(path)
    if buf.has_error:  # a file that is there but unreadable fails whatever on_error says
        raise RuntimeError(f"{node.fullName()}: cannot open {path} for frame {f}")
    spec = buf.spec()
    pixels = buf.get_pixels(oiio.FLOAT, buf.roi_full)
    out = {"size": (spec.full_width, spec.full_height)}
    for i, name in enumerate(spec.channelnames):
        out[_EXR_TO_NUKE.get(name, name)] = np.ascontiguousarray(pixels[..., i])
    return out


def _write_frame(write: Node, f: int) -> None:
    import numpy as np
    import OpenImageIO as oiio
    pixels = _render(write.input(0), f)
    if pixels.get("size") is None:
        raise RuntimeError(f"{write.fullName()}: nothing to write at frame {f}")
    width, height = pixels["size"]
    wanted = write["channels"].value()
    names = {"rgb": ["rgba.red", "rgba.green", "rgba.blue"],
             "rgba": ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha"],
             "alpha": ["rgba.alpha"]}.get(wanted)
    if names is None:
        names = [n for n in pixels if n != "size"]
    blank = np.zeros((height, width), np.float32)
    planes = [pixels.get(n, blank) for n in names]
    path = _expand(write["file"].value(), f)
    if write["create_directories"].value():
        os.makedirs(os.path.dirname(path), exist_ok=True)
    half = write["datatype"].value() == "16 bit half"
    spec = oiio.ImageSpec(width, height, len(names), oiio.HALF if half else oiio.FLOAT)
    spec.channelnames = tuple(_NUKE_TO_EXR.get(n, n) for n in names)
    spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(path)
    if out is None or not out.open(path, spec):
        raise RuntimeError(f"{write.fullName()}: cannot write {path}")
    data = np.stack(planes, axis=-1).astype(np.float16 if half else np.float32)
    out.write_image(np.ascontiguousarray(data))
    out.close()


# ------------------------------------------------------------------ expressions

def _evaluate_expression(text: str, at: Optional[float] = None) -> float:
    """Nuke expressions built from numbers, `frame`, `$gui`, `+ - *`, comparisons, `&&`,
    `||`, `!`, `( )`, evaluated at frame `at` (the current frame when None). `$gui` is 1 in
    the GUI, 0 while rendering (a Write executing, in the GUI too) and under `nuke -x`."""
    if not re.fullmatch(r"[\d\s.()<>=!&|*+\-]*", re.sub(r"frame|\$gui", "", text)):
        raise ValueError(f"expression not modelled by the test double: {text!r}")
    python = text.replace("&&", " and ").replace("||", " or ").replace("$gui", "gui")
    found = re.search(r"!(?!=)", python)
    while found:  # `!x` binds tighter than `*`: `(not x)`
        end = found.end() + len(python[found.end():]) - len(python[found.end():].lstrip())
        if python[end:end + 1] == "(":
            depth = 0
            for end in range(end, len(python)):
                depth += {"(": 1, ")": -1}.get(python[end], 0)
                if depth == 0:
                    break
            end += 1
        else:
            end += re.match(r"[\w.]*", python[end:]).end()  # type: ignore[union-attr]
        python = f"{python[:found.start()]}(not {python[found.end():end]}){python[end:]}"
        found = re.search(r"!(?!=)", python)
    gui = 1 if GUI and not _STATE.executing else 0
    frame = _STATE.frame if at is None else at
    return float(eval(python, {"__builtins__": {}}, {"frame": frame, "gui": gui}))


def _run_script(command: str, node: Optional[Node], knob: Optional[Knob]) -> None:
    _STATE.this.append((node, knob))
    try:
        exec(command, {"nuke": __import__(__name__)})
    finally:
        _STATE.this.pop()


# ------------------------------------------------------------------ test controls (private)

def _reset() -> None:
    """A fresh session: no nodes, callbacks, menus or queued calls; GUI mode, frame 1."""
    global _STATE
    _STATE = _State()
    ProgressTask._instances.clear()
    _set_gui(True)


def _set_gui(gui: bool) -> None:
    """GUI session (True) or `nuke -x` (False)."""
    global GUI
    GUI = bool(gui)
    env["gui"] = GUI


def _process_main_thread(timeout: float = 0.0, limit: int = 0) -> int:
    """Run queued main-thread calls (waiting up to `timeout` for the first; at most `limit`
    when not 0: one turn of Nuke's event loop is `limit=1`); returns the count."""
    count = 0
    wait = timeout
    while not limit or count < limit:
        try:
            call, args, kwargs = _STATE.main_queue.get(timeout=wait) if wait > 0 \
                else _STATE.main_queue.get_nowait()
        except queue.Empty:
            return count
        call(*args, **kwargs)
        count += 1
        wait = 0.0
    return count


def _user_set(knob: Knob, value: Any) -> None:
    """The user edits a knob in the node's panel (opening it first): the value changes and
    knobChanged runs."""
    knob.node().showControlPanel()
    knob.setValue(value)
    _fire("knobChangeds", knob.node(), knob)


def _user_press(knob: Knob) -> None:
    """The user presses a button knob."""
    knob.execute()  # type: ignore[attr-defined]


def _user_connect(node: Node, index: int, upstream: Optional[Node]) -> None:
    """The user connects an input in the DAG: knobChanged runs with the `inputChange` knob
    only while the node's panel is open (Foundry, nuke.addKnobChanged, Nuke 13.2: "The purpose
    is to update other knobs in the control panel. Use addUpdateUI() for changes that should
    happen even when the panel is closed"; Nuke 17 calls it with the panel closed too)."""
    node.setInput(index, upstream)
    if node.shown():
        _fire("knobChangeds", node, node["inputChange"])


def _define_gizmo(name: str) -> None:
    """Make `nuke.nodes.<name>()` create a Gizmo of that class (an empty Group to fill)."""
    _STATE.gizmos.add(name)
