import uuid

from controlplane.ids import IdShape, decode, encode


def test_every_shape_round_trips() -> None:
    value = uuid.uuid4()
    for shape in IdShape:
        text = encode(shape, value)
        assert text.startswith(shape.value)
        assert decode(text, shape) == value


def test_shapes_match_the_seeds() -> None:
    value = uuid.UUID("01a209d0-4617-764e-945a-8cf937ddf68a")
    assert encode(IdShape.PROMPT, value) == "prm_01a209d04617764e945a8cf937ddf68a"
    assert encode(IdShape.SIGNAL_PROMPT, value) == "pmt_01a209d04617764e945a8cf937ddf68a"
    assert encode(IdShape.TEMPLATE, value) == "tmpl-01a209d0-4617-764e-945a-8cf937ddf68a"


def test_bare_uuids_are_accepted_and_garbage_is_not() -> None:
    value = uuid.uuid4()
    assert decode(str(value), IdShape.PROMPT) == value
    assert decode("prm_nothex", IdShape.PROMPT) is None
    assert decode("checkout-assistant", IdShape.PROMPT) is None
    assert decode(encode(IdShape.DEPLOYMENT, value), IdShape.PROMPT) is None
