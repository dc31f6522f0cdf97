"""Language tags: what a stream's tag or a subtitle file name says, as one BCP 47 tag.

Streams are tagged with ISO 639-2 codes (`eng`, `ger` or `deu`, sometimes `en`), sidecar names
carry ISO 639-1 codes, 639-2 codes, BCP 47 tags with a region (`pt-BR`) or names (`English`,
`Deutsch`). Everything is brought to the shortest BCP 47 tag (`en`, `de`, `pt-BR`) with
babelfish, so a filter, a preference and an HTML `<track srclang>` compare equal values.
"""

from __future__ import annotations

from functools import lru_cache

from babelfish import Error as BabelfishError
from babelfish import Language

# Names in the language itself, which babelfish (English names only) does not know.
NATIVE_NAMES = {
    "deutsch": "de",
    "espanol": "es",
    "español": "es",
    "castellano": "es",
    "latino": "es-419",
    "francais": "fr",
    "français": "fr",
    "italiano": "it",
    "portugues": "pt",
    "português": "pt",
    "brazilian": "pt-BR",
    "nederlands": "nl",
    "svenska": "sv",
    "norsk": "no",
    "dansk": "da",
    "suomi": "fi",
    "polski": "pl",
    "magyar": "hu",
    "cesky": "cs",
    "čeština": "cs",
    "русский": "ru",
    "日本語": "ja",
    "中文": "zh",
    "한국어": "ko",
}


@lru_cache(maxsize=1024)
def tag(raw: str | None) -> str | None:
    """Return the BCP 47 tag for a code or name (`ger` -> `de`, `pt_br` -> `pt-BR`), or None."""
    if not raw:
        return None
    text = raw.strip().replace("_", "-")
    low = text.lower()
    if low in ("und", "unk", "mis", "zxx", "mul", ""):
        return None
    if low in NATIVE_NAMES:
        return NATIVE_NAMES[low]
    if low == "es-419":
        return "es-419"
    try:
        if len(low) in (2, 3) or (len(low) >= 4 and low[2:3] == "-" or low[3:4] == "-"):
            lang, _, region = text.partition("-")
            code = lang.lower()
            if len(code) == 3:
                try:
                    language = Language.fromalpha3b(code)
                except (BabelfishError, ValueError, KeyError):
                    language = Language(code)
                language.alpha2  # noqa: B018 - only ISO 639-2 languages (they have a 639-1 code)
            else:
                language = Language.fromalpha2(code)
            base = str(language)
            if region and region.isalpha() and len(region) == 2:
                return f"{base}-{region.upper()}"
            if region and region.isalpha() and len(region) == 4:
                return f"{base}-{region.title()}"
            return base
        return str(Language.fromname(text.capitalize()))
    except (BabelfishError, ValueError, KeyError):
        return None


def name(language_tag: str | None) -> str | None:
    """Return an English name for a tag (`pt-BR` -> `Portuguese (BR)`), or None."""
    if not language_tag:
        return None
    base, _, region = language_tag.partition("-")
    try:
        language = Language.fromalpha2(base) if len(base) == 2 else Language(base)
    except (BabelfishError, ValueError, KeyError):
        return language_tag
    return f"{language.name} ({region})" if region else language.name


def codes(language_tag: str) -> list[str]:
    """Return the raw codes a stream may be tagged with for this tag (`de` -> de, deu, ger)."""
    out = {language_tag}
    base = language_tag.partition("-")[0]
    out.add(base)
    try:
        language = Language.fromalpha2(base) if len(base) == 2 else Language(base)
        out.add(language.alpha3)
        out.add(language.alpha3b)
    except (BabelfishError, ValueError, KeyError, AttributeError):
        pass
    return sorted(out)
