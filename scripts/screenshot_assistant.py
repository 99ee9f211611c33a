"""Save docs/screenshots/09-prompt-assistant.png: the prompt bar with the assistant's row open and
its suggested phrases in the text field, waiting for the person to edit them and press Enter.

    .venv/bin/python scripts/screenshot_assistant.py [--out docs/screenshots]

Offscreen, with its own settings folder. No network: the assistant's answer is a canned
:class:`inference.assistant.AssistantAnswer` given through ``AssistantBar.configure(asker=...)``
(what a real model would answer for this instruction), so the picture is the real widget state.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv: list[str] | None = None) -> int:
    from screenshots import _spin, open_sample, prepare, save_and_close

    out, app = prepare(argv, __doc__)
    from inference.assistant import AssistantAnswer

    window = open_sample(app)
    for label in ("cup", "saucer", "spoon"):
        window.label_editor.add(label)

    def canned(config, instruction, *, labels=(), image=None, cancel=None):
        return AssistantAnswer(
            phrases=("coffee cup", "saucer", "teaspoon"),
            labels={"coffee cup": "cup", "saucer": "saucer", "teaspoon": "spoon"},
            notes="Left out the cup's reflection on the table.",
        )

    bar = window.prompt_bar
    bar.set_text_supported(True)  # as with Lang-SAM loaded
    bar.assistant.configure(asker=canned)
    bar.show_assistant(True)
    bar.assistant.see_image.setChecked(True)
    bar.assistant.instruction.setText("the cup, its saucer and the spoon, not reflections")
    bar.assistant.ask()
    assert _spin(app, 10, lambda: bar.text() != ""), "no answer"
    save_and_close(app, window, out / "09-prompt-assistant.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
