"""The 26 EMOTIC categories in the order every array of the project uses.

The order is the one of the release and of the community converter, so a column index means the same
category in a store we wrote, in a store the community converter wrote, and in a model's logits.
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = (
    "Affection",
    "Anger",
    "Annoyance",
    "Anticipation",
    "Aversion",
    "Confidence",
    "Disapproval",
    "Disconnection",
    "Disquietment",
    "Doubt/Confusion",
    "Embarrassment",
    "Engagement",
    "Esteem",
    "Excitement",
    "Fatigue",
    "Fear",
    "Happiness",
    "Pain",
    "Peace",
    "Pleasure",
    "Sadness",
    "Sensitivity",
    "Suffering",
    "Surprise",
    "Sympathy",
    "Yearning",
)
NUM_CATEGORIES = len(CATEGORIES)
CATEGORY_INDEX: dict[str, int] = {name: i for i, name in enumerate(CATEGORIES)}
VAD_NAMES: tuple[str, str, str] = ("valence", "arousal", "dominance")


def category_index(name: str) -> int:
    """Index of a category by its release spelling; raises KeyError naming the unknown category."""
    try:
        return CATEGORY_INDEX[name]
    except KeyError:
        raise KeyError(f"unknown EMOTIC category {name!r}; expected one of {', '.join(CATEGORIES)}") from None

# Short definitions (after Kosti et al., TPAMI 2019) used as the text for each category when the joint
# model places the 26 emotion names in its shared space.
CATEGORY_DEFINITIONS: dict[str, str] = {
    "Affection": "fond feelings; love; tenderness",
    "Anger": "intense displeasure or rage; furious; resentful",
    "Annoyance": "bothered by something or someone; irritated; impatient; frustrated",
    "Anticipation": "state of looking forward; hoping for or getting prepared for possible future events",
    "Aversion": "feeling disgust, dislike, repulsion; feeling hate",
    "Confidence": "feeling of being certain; conviction that an outcome will be favorable; proud",
    "Disapproval": "feeling that something is wrong or reprehensible; contempt; hostile",
    "Disconnection": "feeling not interested in the main event of the surrounding; indifferent; bored; distracted",
    "Disquietment": "nervous; worried; upset; anxious; tense; pressured; alarmed",
    "Doubt/Confusion": "difficulty to understand or decide; thinking about different options",
    "Embarrassment": "feeling ashamed or guilty",
    "Engagement": "paying attention to something; absorbed into something; curious; interested",
    "Esteem": "feelings of favourable opinion or judgement; respect; admiration; gratefulness",
    "Excitement": "feeling enthusiasm; stimulated; energetic",
    "Fatigue": "weariness; tiredness; sleepy",
    "Fear": "feeling suspicious or afraid of danger, threat, evil or pain; horror",
    "Happiness": "feeling delighted; feeling enjoyment or amusement",
    "Pain": "physical suffering",
    "Peace": "well being and relaxed; no worry; having positive thoughts or sensations; satisfied",
    "Pleasure": "feeling of delight in the senses",
    "Sadness": "feeling unhappy, sorrow, disappointed, or discouraged",
    "Sensitivity": "feeling of being physically or emotionally wounded; feeling delicate or vulnerable",
    "Suffering": "psychological or emotional pain; distressed; anguished",
    "Surprise": "sudden discovery of something unexpected",
    "Sympathy": "state of sharing others emotions, goals or troubles; supportive; compassionate",
    "Yearning": "strong desire to have something; jealous; envious; lust",
}


PROMPT_TEMPLATE = "a person feeling {name}: {definition}"


def category_prompt(name: str, template: str = PROMPT_TEMPLATE) -> str:
    """The sentence a text encoder embeds for a category (zero-shot and joint scoring); ``template``
    may use ``{name}`` (lower case) and ``{definition}``."""
    return template.format(name=name.lower(), definition=CATEGORY_DEFINITIONS[name])
