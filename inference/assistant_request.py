"""What the prompt assistant sends: the instructions (:data:`SYSTEM_PROMPT`), the chat messages,
the ``response_format`` of each mode, and the image.

The image is opt-in: :func:`prepare_image_jpeg` makes a JPEG whose longest side is at most
:data:`MAX_IMAGE_SIDE` and the request carries it as a data-URL image part. The caller must tell
the person each time an image leaves the machine (:func:`image_notice`).

Re-exported by :mod:`inference.assistant`. Qt-free and AWS-free.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from inference.assistant_errors import OPENAI_HOST, AssistantImageError
from inference.assistant_output import MAX_PHRASE_WORDS, MAX_PHRASES, MODE_JSON_OBJECT, MODE_JSON_SCHEMA

MAX_IMAGE_SIDE = 768


# -- the messages ---------------------------------------------------------------------------------
SYSTEM_PROMPT = (
    "You write text prompts for Grounding DINO, an open-vocabulary object detector. The person "
    "describes what they want segmented in an image; you answer with the short noun phrases the "
    "detector should look for. Rules: each phrase names one concrete, visible kind of object "
    f'("dented car door", "scratch", "person"), at most {MAX_PHRASE_WORDS} words, lower case, no '
    "punctuation, no verbs, no negations (leave out what the person excludes and say so in notes); "
    f"at most {MAX_PHRASES} phrases, the fewest that cover the request. box_threshold: null unless "
    "the objects are small or unusual (lower, e.g. 0.2) or easily confused (higher, e.g. 0.4). "
)
LABELS_PROMPT = (
    "The project's labels are listed below. When a phrase is an instance of one of them, set "
    "label to that exact label name; otherwise null. Prefer phrases that match a label."
)


def _user_text(instruction: str, labels: Sequence[str], *, mode: str, schema: Mapping[str, Any], image: bool) -> str:
    parts = [f"Instruction: {instruction}"]
    if labels:
        parts.append(LABELS_PROMPT + "\nLabels: " + json.dumps(list(labels), ensure_ascii=False))
    if image:
        parts.append("The image to annotate is attached; use it to pick phrases for what is really there.")
    if mode != MODE_JSON_SCHEMA:
        parts.append(
            "Reply with one JSON object only, no other text, matching this JSON schema:\n"
            + json.dumps(schema, ensure_ascii=False)
        )
    return "\n\n".join(parts)


def _messages(
    instruction: str, labels: Sequence[str], image_jpeg: bytes | None, *, mode: str, schema: Mapping[str, Any]
) -> list[dict[str, Any]]:
    text = _user_text(instruction, labels, mode=mode, schema=schema, image=image_jpeg is not None)
    content: Any = text
    if image_jpeg is not None:
        url = "data:image/jpeg;base64," + base64.b64encode(image_jpeg).decode("ascii")
        content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def _response_format(mode: str, schema: Mapping[str, Any]) -> dict[str, Any] | None:
    if mode == MODE_JSON_SCHEMA:
        return {
            "type": "json_schema",
            "json_schema": {"name": "segmentation_phrases", "strict": True, "schema": dict(schema)},
        }
    if mode == MODE_JSON_OBJECT:
        return {"type": "json_object"}
    return None


# -- the image -------------------------------------------------------------------------------------
def prepare_image_jpeg(image: Any, *, max_side: int = MAX_IMAGE_SIDE, quality: int = 85) -> bytes:
    """A JPEG of ``image`` (a path, the file's bytes, or an RGB/grey uint8 array) whose longest side
    is at most ``max_side`` pixels, EXIF-rotated, without metadata. Raises
    :class:`AssistantImageError` when the image cannot be read."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    pil: Image.Image
    try:
        if isinstance(image, (str, os.PathLike)):
            pil = Image.open(image)
        elif isinstance(image, (bytes, bytearray, memoryview)):
            pil = Image.open(io.BytesIO(bytes(image)))
        else:
            import numpy as np

            pil = Image.fromarray(np.asarray(image))
        pil = ImageOps.exif_transpose(pil)
        pil = pil.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, TypeError) as exc:
        name = f" {os.fspath(image)!r}" if isinstance(image, (str, os.PathLike)) else ""
        raise AssistantImageError(
            f"The image{name} cannot be read for the assistant ({exc}). "
            "Ask without the image, or open a readable image."
        ) from None
    pil.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    pil.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def server_name(base_url: str | None) -> str:
    """Who receives the request, for messages: ``"OpenAI"`` or the host (``"127.0.0.1:11434"``)."""
    if not base_url:
        return "OpenAI"
    parts = urlsplit(base_url)
    host = parts.netloc or base_url
    return "OpenAI" if parts.hostname == OPENAI_HOST else host


def image_notice(base_url: str | None, *, max_side: int = MAX_IMAGE_SIDE) -> str:
    """The sentence a caller shows each time the image is sent."""
    return (
        f"The image is sent to {server_name(base_url)} (a JPEG at most {max_side} px on its "
        "longest side) with this instruction."
    )
