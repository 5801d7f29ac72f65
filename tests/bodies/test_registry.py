"""The body registry: specs, recorded names, plug-in families, and rebuilding a model's body."""

from __future__ import annotations

import pytest
import torch

import meshgraph.bodies.registry as registry
from meshgraph.bodies import create_body, parse_body_name, register_body, registered_bodies
from tests import humanoid


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("anny", {"family": "anny", "part": "body", "side": None, "topology": None}),
        ("anny-notoes_collapse10pc",
         {"family": "anny", "part": "body", "side": None, "topology": "notoes_collapse10pc"}),
        ("anny-hand.R", {"family": "anny", "part": "hand", "side": "R", "topology": None}),
        ("anny-hand.L", {"family": "anny", "part": "hand", "side": "L", "topology": None}),
        ("anny-hand-hand.L-noeyes",
         {"family": "anny", "part": "hand", "side": "L", "topology": "hand.L-noeyes"}),
        ("smplh", {"family": "smplh", "part": "body", "side": None, "topology": None}),
        ("mano", {"family": "mano", "part": "hand", "side": "R", "topology": None}),
    ],
)  # fmt: skip
def test_recorded_names_parse_to_specs(name, spec):
    assert parse_body_name(name) == spec


def test_names_that_say_nothing_are_refused():
    with pytest.raises(ValueError, match="cannot tell the side"):
        parse_body_name("anny-hand-mittens")
    with pytest.raises(ValueError, match=r"unknown body 'flame': registered families are \["):
        parse_body_name("flame")
    with pytest.raises(ValueError, match="non-empty"):
        parse_body_name("")
    with pytest.raises(ValueError, match="unknown body family 'flame'"):
        create_body({"family": "flame"})


def test_the_default_families_are_registered():
    assert registered_bodies()[:4] == ("anny", "smpl", "smplh", "mano")


class _Stub:
    def __init__(self, part, side):
        self.part, self.side, self.name = part, side, "stub"


def test_a_new_family_plugs_in(monkeypatch):
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    calls = []

    def build(part=None, side=None, topology=None, **options):
        calls.append((part, side, topology, options))
        return _Stub("hand" if part is None else part, side)

    register_body("stub", build)
    assert "stub" in registered_bodies()
    body = create_body({"family": "stub", "part": "hand", "side": "L", "scale": 2},
                       model_path="/x", regressors=None)  # fmt: skip
    assert isinstance(body, _Stub)
    assert calls == [("hand", "L", None, {"scale": 2, "model_path": "/x"})]  # None left out
    assert parse_body_name("stub") == {"family": "stub"}
    with pytest.raises(ValueError, match="registered already"):
        register_body("stub", build)
    register_body("stub", lambda **kw: _Stub("body", None), overwrite=True)
    with pytest.raises(ValueError, match=r"stub is a body model, not a hand \(part='body'"):
        create_body({"family": "stub", "part": "hand"})
    with pytest.raises(ValueError, match="plain name"):
        register_body("my body", build)


def test_anny_specs_rebuild_the_same_model(anny_hand):
    assert anny_hand.spec == {"family": "anny", "part": "hand", "side": "R", "topology": None}
    left = create_body({**anny_hand.spec, "side": "L"})
    assert left.name == "anny-hand.L" and left.side == "L"
    assert left.spec == {"family": "anny", "part": "hand", "side": "L", "topology": None}
    assert left.num_vertices == anny_hand.num_vertices and left.part == "hand"
    assert (anny_hand.part, anny_hand.input_joint_set, anny_hand.mesh_joint_set) == (
        "hand", "hand", "hand"
    )  # fmt: skip
    body = create_body("anny-notoes_collapse10pc")
    assert body.part == "body" and body.num_vertices == 1229
    assert (body.input_joint_set, body.mesh_joint_set) == ("coco", "h36m")
    assert create_body(body.spec).name == body.name
    with pytest.raises(ValueError, match="takes no model_path"):
        create_body("anny", model_path="/somewhere")
    with pytest.raises(ValueError, match="has no side"):
        create_body({"family": "anny", "part": "body", "side": "L"})


def test_a_hand_on_another_topology_keeps_its_side(tmp_path):
    """The issue's case: such a hand came back as AnnyModel("hand"), which raised."""
    from meshgraph.cli import _body_for
    from meshgraph.models import Pose2Mesh

    hand = create_body({"family": "anny", "part": "hand", "side": "L", "topology": "hand.L-noeyes"})
    assert hand.name == "anny-hand-hand.L-noeyes" and hand.side == "L"
    model = Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand", num_levels=3,
                                posenet_width=16)  # fmt: skip
    assert model.config.body_spec == hand.spec and model.part == "hand"
    loaded = Pose2Mesh.load(model.save(tmp_path / "m.pt"))
    again = _body_for(loaded.config, None)
    assert again.spec == hand.spec and again.side == "L"
    # a model saved before specs were recorded: the name alone
    loaded.config.body_spec = None
    assert _body_for(loaded.config, None).spec == hand.spec
    mirrored = loaded.mirrored()
    assert mirrored.config.body == "anny-hand-hand.R-noeyes"


def test_smpl_family_specs(tmp_path):
    pytest.importorskip("smplx")
    path = humanoid.write(tmp_path, "mano")
    hand = create_body("mano", model_path=path, dtype=torch.float64)
    assert hand.spec == {"family": "mano", "part": "hand", "side": "R", "topology": None}
    with pytest.raises(ValueError, match="needs model_path"):
        create_body("smpl")
    with pytest.raises(ValueError, match="one topology"):
        create_body({"family": "smpl", "topology": "x"}, model_path=path)
    with pytest.raises(ValueError, match="mano is a hand model, not a body"):
        create_body({"family": "mano", "part": "body"}, model_path=path)


def test_runs_build_their_body_through_the_registry(monkeypatch):
    from meshgraph.training.pipeline import RunConfig, build_body

    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    register_body("stub", lambda part=None, side=None, topology=None, **kw: _Stub(part, side))
    body = build_body(RunConfig(kind="hand", body="stub"))
    assert (body.part, body.side) == ("hand", "R")
    assert build_body(RunConfig(kind="hand", body="stub", side="L")).side == "L"
    with pytest.raises(ValueError, match=r"needs model_path \(--model-path on the command line\)"):
        build_body(RunConfig(kind="hand", body="mano"))
