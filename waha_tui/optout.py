"""The opt-out keywords: which replies mean "never message me again".

A reply opts out when its whole text, trimmed, is one of the keywords, compared by `fold`:
case (casefold), accents (ARRÊT = arret = Arret) and the punctuation around it ("Stop!")
do not matter; anything more ("don't stop", "stop it please") is not an opt-out. The list
is stored in the database (meta `optout_keywords`, a JSON list) so every host reads the
same one; without a stored list the defaults below apply.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable

from waha_tui.errors import UserError

META_KEY = "optout_keywords"
MAX_KEYWORD = 64  # characters: a keyword is a word or two, never a sentence

# The carriers' standard English words (CTIA: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT)
# and their common equivalents in the languages WhatsApp campaigns are most sent in. Written
# as people type them; `fold` makes accents and case irrelevant.
DEFAULT_KEYWORDS: tuple[str, ...] = (
    # English
    "STOP",
    "STOP ALL",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPT OUT",
    "OPT-OUT",
    "OPTOUT",
    "REMOVE",
    # Spanish
    "BAJA",
    "DAR DE BAJA",
    "DARME DE BAJA",
    "CANCELAR",
    "DETENER",
    "PARAR",
    "ALTO",
    "NO MÁS",
    "NO MAS MENSAJES",
    # Portuguese
    "SAIR",
    "PARE",
    "CANCELAR INSCRIÇÃO",
    "DESCADASTRAR",
    "DESINSCREVER",
    "NÃO QUERO",
    "REMOVER",
    # French
    "ARRÊT",
    "ARRÊTER",
    "DÉSABONNER",
    "DÉSINSCRIRE",
    "DÉSINSCRIPTION",
    # German
    "STOPP",
    "ABMELDEN",
    "ABBESTELLEN",
    "ENDE",
    # Italian
    "BASTA",
    "CANCELLAMI",
    "DISISCRIVIMI",
    "ANNULLA ISCRIZIONE",
    # Indonesian, Dutch
    "BERHENTI",
    "AFMELDEN",
)


class KeywordError(UserError):
    """A keyword list that cannot be stored; the message names the keyword."""


def _trim(text: str) -> str:
    """Whitespace and punctuation off both ends ("Stop!", "¡Basta!", "STOP.")."""
    start, end = 0, len(text)
    while start < end and _edge(text[start]):
        start += 1
    while end > start and _edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _edge(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in "PZ"


def fold(text: str) -> str:
    """How a reply and a keyword are compared: trimmed, case and accents dropped, inner
    whitespace single spaces."""
    decomposed = unicodedata.normalize("NFKD", _trim(text).casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.split())


def matcher(keywords: Iterable[str]) -> frozenset[str]:
    """The folded keywords, for `is_optout`."""
    return frozenset(f for f in (fold(k) for k in keywords) if f)


def is_optout(body: str, folded: frozenset[str]) -> bool:
    """Whether a reply's whole text is an opt-out keyword."""
    return bool(body) and len(body) <= 4 * MAX_KEYWORD and fold(body) in folded


def checked(keywords: Iterable[str]) -> list[str]:
    """A list to store: each trimmed, none empty or over MAX_KEYWORD, duplicates (as folded)
    kept once, in the order given. KeywordError names the first bad one."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in keywords:
        word = " ".join(raw.split())
        if not fold(word):
            raise KeywordError(f"opt-out keyword {raw!r} is empty (or only punctuation)")
        if len(word) > MAX_KEYWORD:
            raise KeywordError(
                f"opt-out keyword {word[:20]!r}… is longer than {MAX_KEYWORD} characters"
            )
        if fold(word) not in seen:
            seen.add(fold(word))
            out.append(word)
    if not out:
        raise KeywordError("give at least one opt-out keyword")
    return out


def parse_stored(value: str | None) -> list[str] | None:
    """The stored list (meta value), or None when none is stored or it is not a list of
    strings (the defaults apply then: a damaged row must not stop the opt-outs)."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    if not isinstance(data, list) or not all(isinstance(k, str) for k in data) or not data:
        return None
    return data


def dumps(keywords: list[str]) -> str:
    return json.dumps(keywords, ensure_ascii=False)
