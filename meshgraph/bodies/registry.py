"""A registry of body models: build a body from its recorded spec, side included.

Every :class:`~meshgraph.bodies.BodyModel` describes how to build it again
(:attr:`~meshgraph.bodies.BodyModel.spec`): a small JSON-able dict with its ``family`` (the
registered name) and the fields that family's builder takes. A trained Pose2Mesh records it,
and ``meshgraph evaluate`` and the training pipeline rebuild bodies through
:func:`create_body`, so a new body model plugs in with one :func:`register_body` call and no
edit to the data, training or command-line code:

>>> sorted(registered_bodies())
['anny', 'mano', 'smpl', 'smplh']
>>> parse_body_name("anny-hand.L")
{'family': 'anny', 'part': 'hand', 'side': 'L', 'topology': None}

Fields every builder is given (it may refuse values it cannot build):

* ``part``: ``"body"`` or ``"hand"``;
* ``side``: ``"R"`` or ``"L"`` for a hand (a hand spec without one gets
  :data:`DEFAULT_HAND_SIDE`), ``None`` for a body;
* ``topology``: a mesh variant of the family (Anny's topologies), ``None`` for the default;

and, from the caller, the options of files users bring (``model_path``, ``regressors``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from meshgraph.bodies.base import BodyModel

__all__ = [
    "DEFAULT_HAND_SIDE",
    "BodyBuilder",
    "create_body",
    "parse_body_name",
    "register_body",
    "registered_bodies",
]

#: ``builder(part=, side=, topology=, **options) -> BodyModel``.
BodyBuilder = Callable[..., "BodyModel"]

_BUILDERS: dict[str, BodyBuilder] = {}
_SPEC_FIELDS = ("part", "side", "topology")
#: The side of a hand whose spec names none (the shipped hand model's side).
DEFAULT_HAND_SIDE = "R"


def register_body(family: str, builder: BodyBuilder, *, overwrite: bool = False) -> None:
    """Make ``create_body({"family": family, ...})`` call ``builder``.

    Args:
        family: The name recorded in specs (and offered by ``meshgraph train --body``).
        builder: Called as ``builder(part=..., side=..., topology=..., **options)``.
        overwrite: Replace a builder already registered under ``family``.

    Raises:
        ValueError: ``family`` is taken (and ``overwrite`` is false) or not a plain name.
    """
    if not isinstance(family, str) or not family.isidentifier():
        raise ValueError(f"a body family must be a plain name, got {family!r}")
    if family in _BUILDERS and not overwrite:
        raise ValueError(f"a body family {family!r} is registered already (overwrite=True)")
    _BUILDERS[family] = builder


def registered_bodies() -> tuple[str, ...]:
    """The registered body families, in registration order."""
    return tuple(_BUILDERS)


def parse_body_name(name: str) -> dict[str, Any]:
    """The spec of a body recorded only by its name (models saved before specs were).

    ``"anny"``, ``"anny-<topology>"``, ``"anny-hand.R"``, ``"anny-hand.L"``,
    ``"anny-hand-<topology>"`` (the side is then read from the topology, e.g. ``hand.L``),
    ``"smpl"``, ``"smplh"``, ``"mano"`` (a right hand).

    Raises:
        ValueError: A name that says no family, or an Anny hand whose side cannot be told.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a body name must be a non-empty string, got {name!r}")
    if name in ("smpl", "smplh"):
        return {"family": name, "part": "body", "side": None, "topology": None}
    if name == "mano":
        return {"family": "mano", "part": "hand", "side": "R", "topology": None}
    if name == "anny":
        return {"family": "anny", "part": "body", "side": None, "topology": None}
    if name in ("anny-hand.R", "anny-hand.L"):
        return {"family": "anny", "part": "hand", "side": name[-1], "topology": None}
    if name.startswith("anny-hand-"):
        topology = name[len("anny-hand-") :]
        sides = [s for s in ("R", "L") if f"hand.{s}" in topology]
        if len(sides) != 1:
            raise ValueError(
                f"cannot tell the side of the Anny hand {name!r} from its name; build it with "
                "create_body({'family': 'anny', 'part': 'hand', 'side': 'R' or 'L', "
                f"'topology': {topology!r}}})"
            )
        return {"family": "anny", "part": "hand", "side": sides[0], "topology": topology}
    if name.startswith("anny-"):
        return {"family": "anny", "part": "body", "side": None, "topology": name[len("anny-") :]}
    if name in _BUILDERS:
        return {"family": name}
    raise ValueError(
        f"unknown body {name!r}: registered families are {list(_BUILDERS)} "
        "(meshgraph.bodies.register_body adds one)"
    )


def create_body(spec: Mapping[str, Any] | str, **options: Any) -> BodyModel:
    """Build the body a spec (or a recorded name) describes.

    Args:
        spec: A :attr:`BodyModel.spec <meshgraph.bodies.BodyModel.spec>` dict, or a body name
            (:func:`parse_body_name`).
        **options: Passed to the builder, for what a spec cannot record: the licensed files'
            ``model_path``, ``regressors``, a dtype. ``None`` values are left out.

    Raises:
        ValueError: An unregistered family (the message lists the registered ones), or a
            built body that is not what the spec asks (part or side).
    """
    fields = dict(parse_body_name(spec) if isinstance(spec, str) else spec)
    family = fields.pop("family", None)
    if family not in _BUILDERS:
        raise ValueError(
            f"unknown body family {family!r}: registered families are {list(_BUILDERS)} "
            "(meshgraph.bodies.register_body adds one)"
        )
    kwargs = {k: fields.get(k) for k in _SPEC_FIELDS}
    if kwargs["part"] == "hand" and kwargs["side"] is None:
        kwargs["side"] = DEFAULT_HAND_SIDE
    kwargs.update({k: v for k, v in fields.items() if k not in _SPEC_FIELDS})
    kwargs.update({k: v for k, v in options.items() if v is not None})
    body = _BUILDERS[family](**kwargs)
    part, side = kwargs["part"], kwargs["side"]
    if part is not None and body.part != part:
        raise ValueError(
            f"{body.name} is a {body.part} model, not a {part} (part={body.part!r}; "
            f"meshgraph train --kind {body.part})"
        )
    if side is not None and body.side != side:
        raise ValueError(
            f"the {family!r} builder made the side {body.side!r}, the spec asks {side!r}"
        )
    return body


def _anny(
    part: str | None = "body", side: str | None = None, topology: str | None = None, **kw: Any
) -> BodyModel:
    from meshgraph.bodies.anny_model import AnnyModel

    for key in ("model_path", "regressors"):
        if key in kw:
            raise ValueError(f"Anny is built in: it takes no {key} (that is for the SMPL family)")
    if part == "hand":
        return AnnyModel(f"hand.{side or DEFAULT_HAND_SIDE}", topology=topology, **kw)
    if part not in (None, "body"):
        raise ValueError(f"Anny builds part 'body' or 'hand', not {part!r}")
    if side is not None:
        raise ValueError(f"an Anny body has no side (got side={side!r})")
    return AnnyModel("body", topology=topology, **kw)


def _smpl_family(kind: str) -> BodyBuilder:
    def build(
        part: str | None = None,
        side: str | None = None,
        topology: str | None = None,
        model_path: Any = None,
        **kw: Any,
    ) -> BodyModel:
        from meshgraph.bodies.smpl import SMPLModel

        if topology is not None:
            raise ValueError(f"{kind.upper()} has one topology (got topology={topology!r})")
        if model_path is None:
            raise ValueError(
                f"{kind.upper()} needs model_path (--model-path on the command line): its "
                "licensed model file or folder (meshgraph never downloads it)"
            )
        if kind == "mano":
            kw.setdefault("is_rhand", (side or DEFAULT_HAND_SIDE) != "L")
        elif side is not None:
            raise ValueError(f"a {kind.upper()} body has no side (got side={side!r})")
        return SMPLModel(kind, model_path, **kw)

    return build


register_body("anny", _anny)
for _kind in ("smpl", "smplh", "mano"):
    register_body(_kind, _smpl_family(_kind))
