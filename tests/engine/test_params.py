import pytest
from pydantic import ValidationError

from workbench.engine import GenerationRequest, SamplingParams


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": -0.1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_k": -1},
        {"max_tokens": 0},
        {"seed": -1},
        {"stop": ("",)},
        {"grammar": "root ::= \"a\"", "json_schema": {"type": "object"}},
        {"temprature": 0.5},  # a typo is an error, not silently ignored
    ],
)
def test_invalid_sampling_values_are_rejected(bad):
    with pytest.raises(ValidationError):
        SamplingParams(**bad)


def test_request_needs_exactly_one_input():
    with pytest.raises(ValidationError, match="exactly one"):
        GenerationRequest()
    with pytest.raises(ValidationError, match="exactly one"):
        GenerationRequest(prompt="a", messages=({"role": "user", "content": "b"},))
    with pytest.raises(ValidationError, match="role"):
        GenerationRequest(messages=({"content": "no role"},))


def test_params_record_roundtrip():
    p = SamplingParams(temperature=0.7, stop=("\n",), seed=3)
    assert SamplingParams(**p.as_record()) == p
    assert p.with_seed(9).seed == 9 and p.seed == 3
