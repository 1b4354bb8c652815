"""Every Python example of the README's "Python SDK" section runs, as a script of its own,
against the running gateway in front of the provider stand-ins."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway_process import MASTER_KEY
from tests.standins.images import PNG_1X1

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Python SDK"

# What examples print (the stand-ins' deterministic answers), by "<heading> <n>": the n-th
# example under that `###` heading. Every example must at least exit 0 and print something.
EXPECTED = {
    "Chat 1": ["You said: Hi\n", "openai: ", " tokens, $0.0"],
    "Chat 2": ["You said: Write a haiku about gateways\n"],
    "Vision 1": [f"I see 2 images: image/png {len(PNG_1X1)} bytes, url https://upload.wikimedia.org/"],
    "Tool calling 1": ["Tool results: get_weather=18 C and sunny in Paris"],
    "Observability 1": ["You said: Summarise our refund policy in one line",
                        "google/gemini-2.5-flash 200"],
    "Errors and dropped parameters 1": ["400 seed", "dropped: seed", "You said: Hello"],
    "Structured outputs 1": ["test test 1 ['test']"],
    "Web search 1": ["[1]", "\n- ", ": http"],
    "Embeddings 1": ["384 cat~kitten 0.", "tokens, $ 0.0"],
    "Responses 1": ["You said: Name a colour", "You said: And another", " tokens"],
}


def sdk_examples(text: str) -> dict[str, str]:
    """"<heading> <n>" -> code, for each ```python block of SECTION (up to the next `## `)."""
    start = text.index(SECTION + "\n")
    end = text.find("\n## ", start + len(SECTION))
    section = text[start: end if end >= 0 else len(text)]
    examples: dict[str, str] = {}
    heading, count = "", 0
    for match in re.finditer(r"^### ([^\n]+)$|^```python\n(.*?)^```$", section, re.M | re.S):
        if match.group(1):
            heading, count = match.group(1).strip(), 0
        else:
            count += 1
            examples[f"{heading} {count}"] = match.group(2)
    return examples


EXAMPLES = sdk_examples((ROOT / "README.md").read_text())


def test_the_section_has_the_examples():
    assert set(EXPECTED) <= set(EXAMPLES)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_runs(name, gateway, upstreams, tmp_path):
    (tmp_path / "photo.png").write_bytes(PNG_1X1)
    script = tmp_path / "example.py"
    script.write_text(EXAMPLES[name])
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNOS_")}
    env.update(LUNOS_BASE_URL=gateway.url, LUNOS_API_KEY=MASTER_KEY, PYTHONIOENCODING="utf-8",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    for expected in EXPECTED.get(name, []):
        assert expected in result.stdout, result.stdout
