"""The wording of the synthetic dialogues: utterance templates and the standalone rewrite.

Every function takes attribute values by name (``"colour"`` → ``"red"``) and picks its template
with the dialogue's random stream, so the wording is part of the seeded draw. No template word is
a colour, pattern or shape name, so such a word in a turn's text comes only from its values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

WORDS_FIRST_TEMPLATES = (
    "I'm looking for {a_category}{that}.",
    "Do you have {a_category}{that}?",
    "I need {a_category}{that}.",
    "Show me {a_category}{that}, please.",
)
WORDS_LATER_TEMPLATES = (
    "It should be {list}.",
    "Preferably {list}.",
    "I'd like it {list}.",
    "Ideally {list}.",
)
PICTURE_FIRST_TEMPLATES = (
    "I'm looking for {a_category} like this one{but}.",
    "Do you have {a_category} like this{but}?",
    "I want {a_category} like the one in this picture{but}.",
)
PICTURE_LATER_TEMPLATES = (
    "Something like this one{but}.",
    "More like this{but}, please.",
    "I'd prefer one like this{but}.",
)
REJECTION_TEMPLATES = (
    "Not that one, I want it {fragment}.",
    "No, it has to be {fragment}.",
    "That's not it; I need it {fragment}.",
)
NEGATIVE_REJECTION_TEMPLATES = (
    "No, not {fragment}.",
    "Not that one: nothing {fragment}.",
    "I don't want it {fragment}.",
)
DRIFT_TEMPLATES = (
    "Actually, make it {new} instead of {old}.",
    "On second thought, {new} rather than {old}.",
    "Sorry, I meant {new}, not {old}.",
)
EXTRA_TEMPLATES = (
    " It should also be {list}.",
    " Also, {list}, please.",
    " And it should be {list}.",
)
ASSISTANT_TEMPLATES = (
    "How about the {title}?",
    "You might like the {title}.",
    "Here is one: the {title}.",
    "Take a look at the {title}.",
)
# Attribute → how a turn says "the item has this value" inside a list.
FRAGMENTS = {
    "colour": "{value}",
    "pattern": "with a {value} pattern",
    "shape": "{value}-shaped",
    "brand": "by {value}",
    "material": "made of {value}",
    "adjective": "{value}-style",
}
# The rewrite names values before the category noun in this order, then material and brand.
REWRITE_BEFORE_NOUN = ("adjective", "colour", "pattern", "shape")
REWRITE_NEGATIVES = {"brand": "not by {value}", "material": "not in {value}"}


def fragment(attribute: str, value: str) -> str:
    """How a user turn says that the item has ``value`` for ``attribute``."""
    return FRAGMENTS[attribute].format(value=value)


def join_list(parts: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def with_article(phrase: str) -> str:
    """``phrase`` after "a" or "an" (by its first letter)."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def words_text(
    rng: np.random.Generator, category: str | None, values: Sequence[tuple[str, str]]
) -> str:
    """A turn stating ``values`` in words; the first turn (``category`` set) names the category."""
    parts = [fragment(attribute, value) for attribute, value in values]
    if category is not None:
        that = f" that is {join_list(parts)}" if parts else ""
        return _pick(rng, WORDS_FIRST_TEMPLATES).format(
            a_category=with_article(category), that=that
        )
    return _pick(rng, WORDS_LATER_TEMPLATES).format(list=join_list(parts))


def picture_text(
    rng: np.random.Generator, category: str | None, variant: tuple[str, str] | None
) -> str:
    """A reference-picture turn; ``variant`` is the one image attribute that should differ."""
    but = f", but {fragment(*variant)}" if variant is not None else ""
    if category is not None:
        return _pick(rng, PICTURE_FIRST_TEMPLATES).format(
            a_category=with_article(category), but=but
        )
    return _pick(rng, PICTURE_LATER_TEMPLATES).format(but=but)


def rejection_text(rng: np.random.Generator, attribute: str, value: str, negative: bool) -> str:
    """Reject the recommendation: name the wanted ``value``, or (``negative``) the unwanted one."""
    templates = NEGATIVE_REJECTION_TEMPLATES if negative else REJECTION_TEMPLATES
    return _pick(rng, templates).format(fragment=fragment(attribute, value))


def drift_text(rng: np.random.Generator, new: str, old: str) -> str:
    """Replace the earlier stated value ``old`` by ``new``."""
    return _pick(rng, DRIFT_TEMPLATES).format(new=new, old=old)


def extra_text(rng: np.random.Generator, values: Sequence[tuple[str, str]]) -> str:
    """A sentence appended to a turn that also states ``values`` in words (leading space)."""
    parts = [fragment(attribute, value) for attribute, value in values]
    return _pick(rng, EXTRA_TEMPLATES).format(list=join_list(parts))


def assistant_text(rng: np.random.Generator, title: str) -> str:
    """The assistant recommending the item titled ``title``."""
    return _pick(rng, ASSISTANT_TEMPLATES).format(title=title)


def rewrite_text(
    values: Mapping[str, str], negatives: Mapping[str, Sequence[str]], picture: bool
) -> str:
    """The standalone query: every value in force in one phrase, e.g. "a vintage red striped
    circle mug in leather by Kadu"; ``picture`` adds "like the one in the picture"."""
    before = [values[name] for name in REWRITE_BEFORE_NOUN if name in values]
    words = [*before, values["category"]]
    if "material" in values:
        words.append(f"in {values['material']}")
    if "brand" in values:
        words.append(f"by {values['brand']}")
    if picture:
        words.append("like the one in the picture")
    phrase = with_article(" ".join(words))
    for attribute in sorted(negatives):
        template = REWRITE_NEGATIVES.get(attribute, "not {value}")
        for value in negatives[attribute]:
            phrase += ", " + template.format(value=value)
    return phrase


def _pick(rng: np.random.Generator, templates: Sequence[str]) -> str:
    return templates[int(rng.integers(len(templates)))]
