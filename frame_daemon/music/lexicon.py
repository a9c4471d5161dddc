"""Place a track's mood tag, genre and tempo on the valence-arousal plane from small derived tables.

Every point here comes from the NRC-VAD lexicon v1 (S. Mohammad, "Obtaining Reliable Human Ratings
of Valence, Arousal, and Dominance for 20,000 English Words", ACL 2018; made available for research
and non-commercial use), rescaled to [-1, 1] with 2x - 1, exactly as the mood words of
`frame_daemon/mood.py`. `scripts/build_music_tables.py` prints LEXICON_TAG_POINTS and GENRE_PRIORS
from the word sets below; only these small derived tables ship, never the lexicon.
"""

from __future__ import annotations

import re
from dataclasses import replace

from frame_daemon.mood import MOOD_WORDS, Mood
from frame_daemon.music.track import MoodEstimate, MoodSource

# --- mood tags --------------------------------------------------------------------------------------

# Mood-tag words (as people and taggers write them in MOOD / TMOO) placed by their own lexicon entry.
# The project's own mood words (MOOD_WORDS) are not listed: they take their region's centroid, so a
# tag named after a region lands inside it.
TAG_WORDS: tuple[str, ...] = (
    "happy", "cheerful", "fun", "playful", "funny", "party", "upbeat", "sunny", "optimistic",
    "hopeful", "uplifting", "triumphant", "heroic", "majestic", "epic", "powerful", "exciting",
    "energetic", "euphoric", "passionate", "sexy", "sensual", "romantic", "love", "sweet",
    "warm", "smooth", "soft", "gentle", "mellow", "chill", "relaxing", "relaxed", "peaceful",
    "quiet", "soothing", "meditative", "spiritual", "carefree", "dreamy", "ethereal", "sleepy",
    "reflective", "introspective", "sentimental", "bittersweet", "emotional", "cinematic",
    "atmospheric", "groovy", "funky", "mysterious", "dramatic", "intense", "loud", "wild", "fierce",
    "rebellious", "angst", "aggressive", "eerie", "scary", "dark", "brooding", "somber", "bleak",
    "mournful", "melancholy", "sad", "lonely", "depressing", "tired", "anxious", "nervous", "moody",
    "wistful",
)

# Tag words the lexicon lacks (compounds, spellings) or reads in a non-musical sense ("heavy" there
# means weighty and slow, "chilled" means cold): placed at the mean of these words instead.
TAG_SYNONYMS: dict[str, tuple[str, ...]] = {
    "chilled": ("chill", "relaxed"),
    "chillout": ("chill", "relaxed", "calm"),
    "laid-back": ("relaxed", "easygoing", "carefree"),
    "feel-good": ("feelgood", "happy", "cheerful"),
    "danceable": ("dance", "lively", "groovy"),
    "haunting": ("haunted", "eerie", "melancholy"),
    "inspiring": ("inspire", "inspirational", "uplifting"),
    "sombre": ("somber",),
    "anthemic": ("anthem", "triumphant", "rousing"),
    "exuberant": ("exuberance", "joyful", "lively"),
    "heavy": ("heavy", "loud", "intense"),
    "bouncy": ("bouncy", "playful", "lively"),
    "angsty": ("angst",),
    # A mood word of the project until mood-v2 gave the plane's centre its honest name, "neutral";
    # tags written with it keep their old place.
    "nostalgic": ("nostalgic", "bittersweet", "reminiscent", "sentimental", "longing"),
}

# Printed by scripts/build_music_tables.py from TAG_WORDS and TAG_SYNONYMS.
LEXICON_TAG_POINTS: dict[str, tuple[float, float]] = {
    "happy": (1.00, 0.47),
    "cheerful": (0.98, 0.44),
    "fun": (0.84, 0.69),
    "playful": (0.78, 0.38),
    "funny": (0.84, 0.22),
    "party": (0.90, 0.68),
    "upbeat": (0.76, 0.06),
    "sunny": (0.48, -0.30),
    "optimistic": (0.96, 0.16),
    "hopeful": (0.89, -0.29),
    "uplifting": (0.54, 0.10),
    "triumphant": (0.90, 0.67),
    "heroic": (0.78, 0.54),
    "majestic": (0.90, 0.46),
    "epic": (0.71, 0.43),
    "powerful": (0.73, 0.66),
    "exciting": (0.90, 0.58),
    "energetic": (0.69, 0.74),
    "euphoric": (0.49, 0.81),
    "passionate": (0.98, 0.65),
    "sexy": (0.73, 0.89),
    "sensual": (0.46, 0.58),
    "romantic": (0.87, 0.06),
    "love": (1.00, 0.04),
    "sweet": (0.34, -0.16),
    "warm": (0.52, -0.38),
    "smooth": (0.65, -0.75),
    "soft": (0.52, -0.64),
    "gentle": (0.69, -0.29),
    "mellow": (0.27, -0.86),
    "chill": (0.67, -0.59),
    "relaxing": (0.71, -0.69),
    "relaxed": (0.73, -0.82),
    "peaceful": (0.73, -0.78),
    "quiet": (0.58, -0.79),
    "soothing": (0.25, -0.64),
    "meditative": (0.23, -0.76),
    "spiritual": (0.88, -0.35),
    "carefree": (0.51, -0.56),
    "dreamy": (0.67, -0.30),
    "ethereal": (0.04, -0.16),
    "sleepy": (0.21, -0.75),
    "reflective": (0.31, -0.42),
    "introspective": (0.10, -0.28),
    "sentimental": (0.17, -0.24),
    "bittersweet": (-0.06, 0.14),
    "emotional": (0.56, 0.43),
    "cinematic": (0.33, -0.02),
    "atmospheric": (0.06, -0.16),
    "groovy": (0.23, 0.08),
    "funky": (0.06, 0.51),
    "mysterious": (-0.10, 0.40),
    "dramatic": (-0.27, 0.56),
    "intense": (0.18, 0.55),
    "loud": (0.15, 0.30),
    "wild": (-0.38, 0.84),
    "fierce": (-0.44, 0.75),
    "rebellious": (-0.31, 0.76),
    "angst": (-0.67, 0.78),
    "aggressive": (-0.75, 0.90),
    "eerie": (-0.47, 0.54),
    "scary": (-0.88, 0.90),
    "dark": (-0.60, -0.20),
    "brooding": (-0.35, -0.27),
    "somber": (-0.63, 0.00),
    "bleak": (-0.59, -0.15),
    "mournful": (-0.64, -0.12),
    "melancholy": (-0.62, -0.48),
    "sad": (-0.55, -0.33),
    "lonely": (-0.50, -0.55),
    "depressing": (-0.71, 0.12),
    "tired": (-0.75, -0.37),
    "anxious": (-0.44, 0.75),
    "nervous": (-0.53, 0.64),
    "moody": (-0.51, 0.62),
    "wistful": (-0.35, -0.10),
    "chilled": (0.70, -0.70),
    "chillout": (0.72, -0.74),
    "laid-back": (0.63, -0.61),
    "feel-good": (0.99, 0.26),
    "danceable": (0.57, 0.46),
    "haunting": (-0.52, 0.17),
    "inspiring": (0.74, 0.26),
    "sombre": (-0.63, 0.00),
    "anthemic": (0.63, 0.13),
    "exuberant": (0.69, 0.58),
    "heavy": (-0.06, 0.25),
    "bouncy": (0.53, 0.38),
    "angsty": (-0.67, 0.78),
    "nostalgic": (0.05, -0.11),
}

MOOD_TAG_WORDS: dict[str, tuple[float, float]] = {**LEXICON_TAG_POINTS, **MOOD_WORDS}

# --- genres -----------------------------------------------------------------------------------------

# Each genre is placed at the mean of 3-5 words that describe how it usually feels. A genre prior is
# a weak hint (a sad pop song exists), which is why its confidence is low.
GENRE_DESCRIPTORS: dict[str, tuple[str, ...]] = {
    "ambient": ("calm", "atmospheric", "soothing", "dreamy"),
    "new age": ("peaceful", "meditative", "spiritual", "soothing"),
    "meditation": ("meditative", "calm", "peaceful", "quiet"),
    "lullaby": ("sleepy", "soothing", "gentle", "soft"),
    "chillout": ("chill", "relaxed", "mellow", "calm"),
    "downtempo": ("mellow", "relaxed", "slow", "atmospheric"),
    "lo-fi": ("mellow", "relaxed", "nostalgic", "sleepy"),
    "lounge": ("relaxed", "smooth", "cool", "mellow"),
    "easy listening": ("relaxed", "pleasant", "smooth", "mellow"),
    "bossa nova": ("relaxed", "smooth", "sunny", "gentle"),
    "classical": ("elegant", "graceful", "serene", "refined"),
    "baroque": ("elegant", "graceful", "ornate", "bright"),
    "chamber music": ("elegant", "intimate", "gentle", "refined"),
    "symphonic": ("majestic", "grand", "dramatic", "epic"),
    "opera": ("dramatic", "passionate", "majestic", "tragic"),
    "piano": ("gentle", "soft", "reflective", "calm"),
    "acoustic": ("gentle", "soft", "warm", "intimate"),
    "singer-songwriter": ("intimate", "reflective", "heartfelt", "sincere"),
    "folk": ("gentle", "warm", "nostalgic", "earthy", "simple"),
    "country": ("nostalgic", "sentimental", "warm", "honest"),
    "soundtrack": ("cinematic", "dramatic", "epic", "emotional"),
    "jazz": ("smooth", "cool", "mellow", "sophisticated"),
    "swing": ("lively", "playful", "dance", "cheerful"),
    "blues": ("sad", "melancholy", "soulful", "lonely"),
    "soul": ("soulful", "warm", "passionate", "emotional"),
    "gospel": ("joyful", "spiritual", "uplifting", "hopeful"),
    "r&b": ("smooth", "sensual", "romantic", "soulful"),
    "funk": ("funky", "groovy", "lively", "dance"),
    "disco": ("dance", "party", "happy", "lively"),
    "reggae": ("relaxed", "sunny", "carefree", "groovy"),
    "ska": ("upbeat", "playful", "lively", "fun"),
    "dub": ("relaxed", "hypnotic", "deep", "hazy"),
    "latin": ("passionate", "lively", "dance", "sensual"),
    "tango": ("passionate", "sensual", "dramatic", "intense"),
    "flamenco": ("passionate", "fiery", "intense", "dramatic"),
    "world": ("exotic", "vibrant", "rhythmic", "colorful"),
    "christmas": ("festive", "joyful", "cheerful", "nostalgic"),
    "children's": ("playful", "happy", "fun", "innocent"),
    "pop": ("happy", "catchy", "upbeat", "fun"),
    "synthpop": ("upbeat", "catchy", "bright", "electric"),
    "soft rock": ("soft", "mellow", "warm", "romantic"),
    "indie": ("quirky", "wistful", "dreamy", "hopeful"),
    "alternative": ("moody", "rebellious", "introspective", "edgy"),
    "shoegaze": ("dreamy", "hazy", "ethereal", "melancholy"),
    "post-rock": ("atmospheric", "epic", "melancholy", "dreamy"),
    "trip hop": ("moody", "dark", "hypnotic", "mellow"),
    "gothic": ("dark", "gloomy", "mysterious", "melancholy"),
    "emo": ("emotional", "sad", "angst", "lonely"),
    "grunge": ("angst", "gloomy", "heavy", "loud"),
    "rock": ("loud", "energetic", "powerful", "rebellious"),
    "hard rock": ("loud", "aggressive", "powerful", "intense"),
    "punk": ("rebellious", "angry", "quick", "loud"),
    "hardcore": ("aggressive", "angry", "loud", "brutal"),
    "metal": ("aggressive", "loud", "intense", "fierce"),
    "industrial": ("harsh", "aggressive", "dark", "mechanical"),
    "noise": ("harsh", "noisy", "chaotic", "abrasive"),
    "electronic": ("energetic", "hypnotic", "electric", "rhythmic"),
    "dance": ("dance", "energetic", "lively", "party"),
    "house": ("dance", "groovy", "upbeat", "party"),
    "techno": ("hypnotic", "energetic", "intense", "relentless"),
    "trance": ("euphoric", "hypnotic", "energetic", "uplifting"),
    "drum and bass": ("rapid", "energetic", "intense", "frantic"),
    "dubstep": ("aggressive", "intense", "loud", "wild"),
    "hip hop": ("confident", "rhythmic", "cool", "urban"),
    "rap": ("aggressive", "confident", "rhythmic", "defiant"),
}

# Other spellings and names of the genres above. All names match case-, space- and punctuation-blind,
# so 'Hip-Hop', 'hiphop' and 'hip hop' need no alias.
GENRE_ALIASES: dict[str, str] = {
    "rnb": "r&b",
    "rhythm and blues": "r&b",
    "dnb": "drum and bass",
    "d&b": "drum and bass",
    "jungle": "drum and bass",
    "edm": "dance",
    "electronica": "electronic",
    "chill-out": "chillout",
    "lofi": "lo-fi",
    "kids": "children's",
    "children": "children's",
    "ost": "soundtrack",
    "score": "soundtrack",
    "film": "soundtrack",
    "orchestral": "symphonic",
    "orchestra": "symphonic",
    "kpop": "pop",
    "jpop": "pop",
    "electropop": "synthpop",
    "rock and roll": "rock",
    "rock n roll": "rock",
    "goth": "gothic",
    "heavy metal": "metal",
    "spiritual": "gospel",
    "xmas": "christmas",
    "holiday": "christmas",
    "soft": "soft rock",
}

# Printed by scripts/build_music_tables.py from GENRE_DESCRIPTORS.
GENRE_PRIORS: dict[str, tuple[float, float]] = {
    "ambient": (0.43, -0.48),
    "new age": (0.52, -0.63),
    "meditation": (0.57, -0.78),
    "lullaby": (0.42, -0.58),
    "chillout": (0.60, -0.77),
    "downtempo": (0.19, -0.67),
    "lo-fi": (0.28, -0.68),
    "lounge": (0.60, -0.59),
    "easy listening": (0.63, -0.70),
    "bossa nova": (0.64, -0.54),
    "classical": (0.71, -0.21),
    "baroque": (0.74, -0.05),
    "chamber music": (0.64, -0.06),
    "symphonic": (0.53, 0.48),
    "opera": (0.18, 0.62),
    "piano": (0.57, -0.54),
    "acoustic": (0.55, -0.28),
    "singer-songwriter": (0.60, -0.20),
    "folk": (0.24, -0.38),
    "country": (0.36, -0.35),
    "soundtrack": (0.33, 0.35),
    "jazz": (0.60, -0.39),
    "swing": (0.81, 0.53),
    "blues": (-0.29, -0.42),
    "soul": (0.64, 0.09),
    "gospel": (0.82, -0.01),
    "r&b": (0.62, -0.11),
    "funk": (0.44, 0.47),
    "disco": (0.84, 0.61),
    "reggae": (0.49, -0.40),
    "ska": (0.77, 0.44),
    "dub": (0.19, -0.22),
    "latin": (0.73, 0.63),
    "tango": (0.34, 0.59),
    "flamenco": (0.18, 0.62),
    "world": (0.59, 0.35),
    "christmas": (0.65, 0.28),
    "children's": (0.77, 0.24),
    "pop": (0.74, 0.28),
    "synthpop": (0.45, 0.10),
    "soft rock": (0.54, -0.45),
    "indie": (0.41, -0.23),
    "alternative": (-0.29, 0.47),
    "shoegaze": (0.00, -0.27),
    "post-rock": (0.21, -0.13),
    "trip hop": (-0.18, -0.08),
    "gothic": (-0.53, -0.12),
    "emo": (-0.29, 0.08),
    "grunge": (-0.45, 0.20),
    "rock": (0.31, 0.61),
    "hard rock": (0.08, 0.60),
    "punk": (-0.13, 0.56),
    "hardcore": (-0.53, 0.66),
    "metal": (-0.21, 0.62),
    "industrial": (-0.47, 0.28),
    "noise": (-0.49, 0.46),
    "electronic": (0.29, 0.39),
    "dance": (0.77, 0.68),
    "house": (0.67, 0.37),
    "techno": (0.17, 0.46),
    "trance": (0.47, 0.44),
    "drum and bass": (0.16, 0.66),
    "dubstep": (-0.20, 0.65),
    "hip hop": (0.46, 0.02),
    "rap": (-0.07, 0.35),
}

# --- reading tags and genres ------------------------------------------------------------------------

TAG_CONFIDENCE = 0.85  # a person (or their tagger) said so: trusted, but still one word for a whole track
GENRE_CONFIDENCE = 0.35  # the genre names the track exactly
GENRE_PARTIAL_CONFIDENCE = 0.30  # only a genre contained in the name was recognised
NEUTRAL_CONFIDENCE = 0.05

NEUTRAL = MoodEstimate(MoodSource.NEUTRAL, Mood(0.0, 0.0, NEUTRAL_CONFIDENCE), "no mood information")

# Tempo rule: a BPM tag moves a weak (genre or neutral) estimate's arousal by at most BPM_MAX_NUDGE,
# linearly from -BPM_MAX_NUDGE at BPM_PIVOT - BPM_SPAN to +BPM_MAX_NUDGE at BPM_PIVOT + BPM_SPAN.
# Tempo is only loosely tied to felt energy (half-time feels, ballads at 140), so it nudges and never
# overrides; a mood tag or audio analysis already accounts for tempo and is left alone.
BPM_PIVOT = 110.0
BPM_SPAN = 50.0
BPM_MAX_NUDGE = 0.15
BPM_PLAUSIBLE = (30.0, 300.0)  # outside this a BPM tag is a typo or a doubled/halved reading

_SEPARATORS = re.compile(r"[;,/|\n\0]")  # how taggers and MPD pack several values into one tag
_WORD = re.compile(r"[^\W_]+")
# Words that carry no mood of their own inside a tag phrase ("very dark and moody").
_FILLER = frozenset({"a", "an", "and", "n", "the", "of", "very", "quite", "so", "really", "bit",
                     "slightly", "little", "kind", "mood", "music", "feeling", "vibe", "vibes"})
_MAX_DETAIL_TEXT = 60


def _tokens(text: str) -> list[str]:
    """Lower-case words of `text`, with '&' read as 'and' and the joiners 'and' / 'n' dropped."""
    return [w for w in _WORD.findall(text.lower().replace("&", " and ")) if w not in ("and", "n")]


def _compact(text: str) -> str:
    """One spelling for 'Hip-Hop', 'hip hop', 'HipHop', 'Drum & Bass' and 'drum and bass'."""
    return "".join(_tokens(text))


def _quoted(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL_TEXT else text[: _MAX_DETAIL_TEXT - 1] + "…"


def _mean(points: list[tuple[float, float]]) -> tuple[float, float]:
    # Rounded: the table values carry two decimals, more digits would only be float noise.
    n = len(points)
    return (round(sum(p[0] for p in points) / n, 4), round(sum(p[1] for p in points) / n, 4))


_TAG_INDEX: dict[str, str] = {_compact(word): word for word in MOOD_TAG_WORDS}
_GENRE_INDEX: dict[str, str] = {_compact(g): g for g in GENRE_PRIORS} | {
    _compact(alias): genre for alias, genre in GENRE_ALIASES.items()}
# No run of more words than a genre name has letters can spell one (every word has a letter): the
# bound that keeps a tag of thousands of words (a broken tagger, a crafted file) from costing
# hours, cubic in its words, when every run of them is tried.
_LONGEST_GENRE = max(map(len, _GENRE_INDEX))


def mood_from_tag(text: str | None) -> MoodEstimate | None:
    """Place a mood tag ("Calm", "happy; energetic", "dark and moody") on the plane, or None.

    Several values (split on ; , / |) are averaged. A value that is not a known word as a whole is
    read word by word. Confidence is TAG_CONFIDENCE when every value or word is known, falling to
    half of it as the share of unknown words grows.
    """
    if not text:
        return None
    names: list[str] = []
    total = 0
    for part in _SEPARATORS.split(text):
        whole = _TAG_INDEX.get(_compact(part))
        if whole:
            names.append(whole)
            total += 1
            continue
        for word in _tokens(part):
            if word in _FILLER:
                continue
            total += 1
            if word in _TAG_INDEX:
                names.append(_TAG_INDEX[word])
    if not names:
        return None
    valence, arousal = _mean([MOOD_TAG_WORDS[n] for n in names])
    share_known = len(names) / total
    detail = f"mood tag '{_quoted(text)}'"
    if share_known < 1.0:
        detail += f" (read as {', '.join(dict.fromkeys(names))})"
    confidence = TAG_CONFIDENCE * (0.5 + 0.5 * share_known)
    return MoodEstimate(MoodSource.TAG, Mood.clipped(valence, arousal, confidence), detail)


def _genre_within(tokens: list[str]) -> str | None:
    """The longest known genre inside a genre name ('Progressive Rock' -> rock), or None.

    Longest counts words, so 'hard rock' wins over 'rock'; between equally long ones the last wins,
    because English puts the head noun last ('Folk Rock' is rock, 'Indie Pop' is pop). Failing that,
    a genre of four or more letters at the start or end of one word ('Metalcore', 'Folktronica');
    shorter ones ('emo', 'rap', 'pop') would match too much by accident ('demo', 'trap').
    """
    for size in range(min(len(tokens), _LONGEST_GENRE), 0, -1):
        for start in range(len(tokens) - size, -1, -1):
            genre = _GENRE_INDEX.get("".join(tokens[start:start + size]))
            if genre:
                return genre
    affixed = [(len(key), genre) for tok in tokens for key, genre in _GENRE_INDEX.items()
               if len(key) >= 4 and key != tok and (tok.startswith(key) or tok.endswith(key))]
    return max(affixed)[1] if affixed else None


def mood_from_genre(text: str | None) -> MoodEstimate | None:
    """The prior of a genre tag ("Ambient", "Progressive Rock", "Rock; Pop"), or None if unknown.

    Case, punctuation, hyphens and '&' / 'and' do not matter. Several genres are averaged.
    """
    if not text:
        return None
    # The whole text first: 'Singer/Songwriter' is one genre, not two values.
    whole = _GENRE_INDEX.get(_compact(text))
    parts = [whole] if whole else _SEPARATORS.split(text)
    found: list[str] = []
    exact = True
    for part in parts:
        tokens = _tokens(part)
        if not tokens:
            continue
        genre = _GENRE_INDEX.get("".join(tokens))
        if genre is None:
            genre = _genre_within(tokens)
            if genre is not None:
                exact = False
        if genre:
            found.append(genre)
    if not found:
        return None
    valence, arousal = _mean([GENRE_PRIORS[g] for g in found])
    names = list(dict.fromkeys(found))
    detail = f"genre '{_quoted(text)}'"
    if [_compact(n) for n in names] != [_compact(p) for p in parts if _compact(p)]:
        detail += f" as {', '.join(names)}"
    confidence = GENRE_CONFIDENCE if exact else GENRE_PARTIAL_CONFIDENCE
    return MoodEstimate(MoodSource.GENRE, Mood.clipped(valence, arousal, confidence), detail + " (prior)")


def nudge_for_bpm(estimate: MoodEstimate, bpm: float | None) -> MoodEstimate:
    """Move a genre or neutral estimate's arousal a little towards the track's tempo (see BPM_*)."""
    if bpm is None or not BPM_PLAUSIBLE[0] <= bpm <= BPM_PLAUSIBLE[1]:
        return estimate
    if estimate.source not in (MoodSource.GENRE, MoodSource.NEUTRAL):
        return estimate
    shift = BPM_MAX_NUDGE * max(-1.0, min(1.0, (bpm - BPM_PIVOT) / BPM_SPAN))
    mood = Mood.clipped(estimate.mood.valence, estimate.mood.arousal + shift, estimate.mood.confidence)
    return replace(estimate, mood=mood, detail=f"{estimate.detail}, {bpm:.0f} BPM")


def estimates_from_tags(mood: str | None, genre: str | None, bpm: float | None) -> list[MoodEstimate]:
    """Every estimate a track's tags support, most trusted first; the neutral floor always comes last."""
    found = [mood_from_tag(mood), mood_from_genre(genre)]
    return [nudge_for_bpm(e, bpm) for e in found if e is not None] + [nudge_for_bpm(NEUTRAL, bpm)]
