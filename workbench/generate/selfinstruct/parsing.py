"""Parse what a (possibly weak, base) model wrote into an instruction or an instance.

Parsers never raise on model output: they return what they could recover and a reason when nothing
usable was there, so every candidate becomes a row that says why it was dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ParsedInstance", "parse_instance", "parse_instruction"]

_TASK_MARKER = re.compile(r"^\s*(?:task\s*)?\d+\s*[:.)]\s*", re.IGNORECASE)
_NEXT_TASK = re.compile(r"\n\s*(?:task\s*\d+\s*[:.)]|\d+\s*[.)]\s)", re.IGNORECASE)
_QUOTES = "\"'`“”‘’"


def parse_instruction(completion: str, finish_reason: str = "stop") -> tuple[str, str | None]:
    """(instruction, reason-or-None) from a completion of "... Task n:".

    Takes the text up to the next task marker or line break, strips a repeated "Task n:" marker and
    quotes, collapses whitespace and capitalises the first letter (as the paper's code does). A completion
    cut by the token limit before its line ended is reported as 'truncated'.
    """
    text = completion.replace("\r\n", "\n")
    text = _TASK_MARKER.sub("", text.lstrip(" \t"), count=1)
    cut = _NEXT_TASK.search(text)
    ended = cut is not None or "\n" in text.strip(" \t") or finish_reason != "length"
    if cut is not None:
        text = text[: cut.start()]
    stripped = text.strip()
    first_line = stripped.split("\n", 1)[0] if stripped else ""
    inst = " ".join(first_line.split()).strip(_QUOTES).strip()
    if not inst:
        return "", "empty"
    inst = inst[0].upper() + inst[1:]
    if not ended:
        return inst, "truncated"
    return inst, None


@dataclass
class ParsedInstance:
    """One input/output pair recovered from an instance completion."""

    input: str
    output: str
    reason: str | None = None


_FIELD = r"\s*(.*?)\s*"


def _clean_input(value: str) -> str:
    value = value.strip()
    return "" if value.lower() in ("<none>", "none", "(none)", "n/a", "") else value


def parse_instance(completion: str, is_classification: bool, finish_reason: str = "stop") -> ParsedInstance:
    """Parse the continuation of an instance prompt (which ended with "Input:" or "Class label:")."""
    text = completion.replace("\r\n", "\n")
    cut = re.search(r"\n\s*Task\s*:", text)
    if cut is not None:
        text = text[: cut.start()]
    if is_classification:
        m = re.match(r"(?s)" + _FIELD + r"\n\s*Input\s*:" + _FIELD + r"\Z", text)
        if m is None:
            return ParsedInstance("", text.strip(), "unparseable")
        label, inp = m.group(1).split("\n", 1)[0].strip(), _clean_input(m.group(2))
        if not label:
            return ParsedInstance(inp, "", "empty_output")
        if not inp:
            return ParsedInstance("", label, "empty_input")
        return ParsedInstance(inp, label, "truncated" if finish_reason == "length" else None)
    m = re.match(r"(?s)" + _FIELD + r"\n\s*Output\s*:" + _FIELD + r"\Z", text)
    if m is None:
        return ParsedInstance(_clean_input(text), "", "unparseable")
    inp, out = _clean_input(m.group(1)), m.group(2).strip()
    if not out:
        return ParsedInstance(inp, "", "empty_output")
    if inp and inp == out:
        return ParsedInstance(inp, out, "input_equals_output")
    return ParsedInstance(inp, out, "truncated" if finish_reason == "length" else None)
