"""The synthetic corpus's own vocabulary and sentence grammar (smart-speaker style).

Commands, questions and statements are built from templates with slots filled from small
word lists; numbers are spelled out and there are no abbreviations, so every word of the
text is one word of eSpeak's output. :func:`sentence` is a pure function of ``(seed, index)``;
:data:`SHARED_SENTENCES` are the two sentences every synthetic speaker reads (TIMIT's SA1/SA2).
"""

from __future__ import annotations

import numpy as np

#: The two sentences every speaker says (written as ``SA1`` and ``SA2``).
SHARED_SENTENCES: tuple[str, str] = (
    "Please turn on the kitchen lights and play some quiet music.",
    "What will the weather be like in Boston tomorrow morning?",
)

#: The clock hours, also the first twelve numbers.
ONE_TO_TWELVE = (
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)

SLOTS: dict[str, tuple[str, ...]] = {
    "device": (
        "lights",
        "lamp",
        "heater",
        "fan",
        "television",
        "radio",
        "speaker",
        "oven",
        "coffee machine",
        "air conditioner",
        "dishwasher",
        "porch light",
        "alarm",
        "garage door",
        "thermostat",
        "vacuum cleaner",
        "washing machine",
    ),
    "room": (
        "kitchen",
        "bedroom",
        "living room",
        "bathroom",
        "hallway",
        "garden",
        "office",
        "basement",
        "dining room",
        "garage",
        "nursery",
        "attic",
    ),
    "city": (
        "Boston",
        "Chicago",
        "Denver",
        "Seattle",
        "Dallas",
        "Atlanta",
        "Phoenix",
        "Miami",
        "Portland",
        "Houston",
        "London",
        "Paris",
        "Berlin",
        "Madrid",
        "Dublin",
        "Toronto",
        "Sydney",
        "Tokyo",
        "Oslo",
        "Nashville",
    ),
    "day": (
        "today",
        "tonight",
        "tomorrow",
        "on Monday",
        "on Tuesday",
        "on Wednesday",
        "on Thursday",
        "on Friday",
        "on Saturday",
        "on Sunday",
        "this weekend",
        "next week",
        "this evening",
        "tomorrow morning",
    ),
    "number": (*ONE_TO_TWELVE, "fifteen", "twenty", "thirty", "forty five", "sixty"),
    "hour": ONE_TO_TWELVE,
    "period": ("in the morning", "in the afternoon", "in the evening", "at night"),
    "unit": ("minutes", "seconds", "hours"),
    "genre": (
        "jazz",
        "classical music",
        "rock music",
        "country music",
        "the blues",
        "piano music",
        "folk songs",
        "dance music",
        "the news",
        "a podcast",
        "relaxing sounds",
        "rain sounds",
        "the radio",
    ),
    "item": (
        "milk",
        "eggs",
        "bread",
        "butter",
        "apples",
        "coffee",
        "rice",
        "cheese",
        "tomatoes",
        "orange juice",
        "paper towels",
        "chicken",
        "bananas",
        "yogurt",
        "pasta",
        "onions",
        "soap",
        "batteries",
    ),
    "person": (
        "mom",
        "dad",
        "grandma",
        "my sister",
        "my brother",
        "the doctor",
        "Sarah",
        "David",
        "my boss",
        "the office",
        "Michael",
        "Emily",
        "the neighbors",
    ),
    "color": ("red", "blue", "green", "warm white", "purple", "yellow", "orange", "pink"),
    "adjective": (
        "quiet",
        "loud",
        "warm",
        "cold",
        "bright",
        "dark",
        "early",
        "late",
        "happy",
        "tired",
        "busy",
        "ready",
    ),
    "question_topic": (
        "the capital of France",
        "the tallest mountain in the world",
        "the population of Canada",
        "the speed of light",
        "the distance to the moon",
        "the meaning of this word",
        "the score of the game",
        "the name of this song",
        "the boiling point of water",
        "the longest river in Africa",
    ),
    "animal": ("dog", "cat", "bird", "horse", "rabbit", "fish", "puppy", "kitten"),
    "food": ("pizza", "soup", "pancakes", "a sandwich", "salad", "noodles", "tacos", "curry"),
    "direction": ("up", "down"),
    "verb_on": ("turn on", "switch on", "start", "open", "turn off", "switch off", "stop", "close"),
    "politeness": ("", "please ", "could you ", "can you ", "would you "),
}

TEMPLATES: tuple[str, ...] = (
    "{politeness}{verb_on} the {device} in the {room}.",
    "{politeness}set the {room} {device} to {color}.",
    "{politeness}turn the volume {direction} a little.",
    "{politeness}set a timer for {number} {unit}.",
    "{politeness}wake me up at {hour} {period}.",
    "{politeness}play {genre} in the {room}.",
    "{politeness}add {item} and {item} to my shopping list.",
    "{politeness}call {person} {day}.",
    "{politeness}remind me to buy {item} {day}.",
    "{politeness}send a message to {person} saying I will be {adjective}.",
    "{politeness}dim the lights in the {room} to {number} percent.",
    "What is the weather like in {city} {day}?",
    "Will it rain in {city} {day}?",
    "How long will it take to drive to {city}?",
    "What is {question_topic}?",
    "Do you know {question_topic}?",
    "What time is it in {city} right now?",
    "Is the {device} in the {room} still on?",
    "When does the {room} {device} turn off?",
    "How many {unit} are left on the timer?",
    "Who is calling me {day}?",
    "What should I cook for dinner {day}?",
    "Where did I leave my keys?",
    "How do I make {food} for {number} people?",
    "The {device} in the {room} is making a strange noise.",
    "My {animal} is sleeping in the {room} again.",
    "I will be home {period} {day}.",
    "We are having {food} for dinner {day}.",
    "It is too {adjective} in the {room} tonight.",
    "The meeting with {person} moved to {hour} {period}.",
    "Our flight to {city} leaves {day} at {hour}.",
    "I think the {animal} wants to go outside.",
    "The {room} needs a new {device} before winter.",
    "{person} is coming over {day} with {food}.",
)


def sentence(seed: int, index: int) -> str:
    """The ``index``-th sentence of the grammar for ``seed`` (a pure function of both).

    Examples
    --------
    >>> sentence(0, 3) == sentence(0, 3)
    True
    """
    rng = np.random.default_rng([seed, index, 0x6A4])
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    parts = template.split("{")
    out = [parts[0]]
    used: set[str] = set()  # a slot used twice ("{item} and {item}") gets two different fillers
    for part in parts[1:]:
        slot, rest = part.split("}", 1)
        words = [w for w in SLOTS[slot] if w not in used] or list(SLOTS[slot])
        word = words[int(rng.integers(len(words)))]
        used.add(word)
        out.append(word + rest)
    text = "".join(out).strip()
    if text.startswith(("could you", "can you", "would you")):
        text = text[:-1] + "?"
    return text[0].upper() + text[1:]


def words_of(text: str) -> list[str]:
    """Lower-case words of a sentence without punctuation (TIMIT ``.WRD`` style)."""
    return [w.strip(".,?!").lower() for w in text.split() if w.strip(".,?!")]
