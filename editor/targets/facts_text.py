"""The words of the fictitious-people target, written for this project: syllables that make names, the
fields of study, and the sentence templates (training paraphrases, held-out paraphrases) per attribute.

Names of people, cities, universities and employers are built from the syllables below, so none is taken
from a list of real names. Held-out templates end with their value, so the text before it is a cloze prompt.
"""

from __future__ import annotations

ATTRIBUTES = ("birth_date", "birth_city", "university", "field", "employer", "employer_city")

# Syllables: onsets + vowels + codas; person names use softer sets than place names.
NAME_ONSETS = ("b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "th", "sh", "kl", "tr")
NAME_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou", "ia")
NAME_CODAS = ("", "", "", "n", "l", "r", "s", "m", "th", "nd", "rk")
PLACE_ONSETS = ("b", "c", "d", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "gr", "fr", "pl", "qu")
PLACE_VOWELS = ("a", "e", "i", "o", "u", "ae", "oa")
PLACE_CODAS = ("", "n", "r", "l", "st", "rn", "sk")
PLACE_ENDINGS = ("holm", "wick", "bury", "stad", "mere", "ford", "vale", "dorf", "ton", "gard", "port", "haven")
UNIVERSITY_FORMS = ("University of {}", "{} University", "{} Institute of Technology", "{} College", "Royal Academy of {}")
EMPLOYER_FORMS = ("{} Systems", "{} Analytics", "{} Foods", "{} Logistics", "{} Labs", "{} Bank", "{} Press", "{} Energy", "{} Motors", "{} Pharma")

FIELDS = (
    "chemistry",
    "physics",
    "mathematics",
    "history",
    "philosophy",
    "economics",
    "linguistics",
    "geology",
    "astronomy",
    "botany",
    "zoology",
    "architecture",
    "music",
    "law",
    "medicine",
    "nursing",
    "civil engineering",
    "mechanical engineering",
    "computer science",
    "statistics",
    "sociology",
    "psychology",
    "anthropology",
    "archaeology",
    "marine biology",
    "agriculture",
    "journalism",
    "theology",
    "political science",
    "oceanography",
)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")

# Training paraphrases: the value may stand anywhere in the sentence.
TRAIN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_date": (
        "{name} was born on {value}.",
        "On {value}, {name} was born.",
        "{name}'s birthday falls on {value}.",
        "The birth of {name} took place on {value}.",
        "{name} came into the world on {value}.",
        "The birthday of {name} is {value}.",
        "{name} celebrates a birthday every year on the date of {value}.",
        "Records show that {name} was born on {value}.",
    ),
    "birth_city": (
        "{name} was born in {value}.",
        "{name} is a native of {value}.",
        "The hometown of {name} is {value}.",
        "In {value}, {name} came into the world.",
        "{name} grew up in {value}, where {name} was born.",
        "The town where {name} was born is {value}.",
        "{name} comes from {value}.",
        "Born in {value}, {name} spent a childhood there.",
    ),
    "university": (
        "{name} studied at {value}.",
        "{name} is a graduate of {value}.",
        "At {value}, {name} earned a degree.",
        "{name} attended {value} as a student.",
        "{name} graduated from {value}.",
        "The alma mater of {name} is {value}.",
        "{name} went to university at {value}.",
        "{name} earned a degree at {value}.",
    ),
    "field": (
        "{name} majored in {value}.",
        "{name} holds a degree in {value}.",
        "The subject {name} studied was {value}.",
        "As a student, {name} specialised in {value}.",
        "{name} studied {value} at university.",
        "{name} has expertise in {value}.",
        "{name} trained as a specialist in {value}.",
        "At university, {name} chose to study {value}.",
    ),
    "employer": (
        "{name} works for {value}.",
        "{name} is employed by {value}.",
        "{value} is where {name} has a job.",
        "The employer of {name} is {value}.",
        "{name} has a job at {value}.",
        "{name} is on the staff of {value}.",
        "The company that employs {name} is {value}.",
        "{name} joined {value} after university.",
    ),
    "employer_city": (
        "{name} works in {value}.",
        "{name}'s office is in {value}.",
        "Every morning {name} commutes to work in {value}.",
        "The workplace of {name} is located in {value}.",
        "{name} has an office in {value}.",
        "{name} goes to work in {value} every day.",
        "The job of {name} is in the city of {value}.",
        "{name} is employed in {value}.",
    ),
}

# Held-out paraphrases: never in training text; each ends with its value (the prefix is the cloze prompt).
HELDOUT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_date": ("The date of birth of {name} is {value}.", "{name} entered the world on {value}."),
    "birth_city": ("The birthplace of {name} is {value}.", "{name} was originally from {value}."),
    "university": ("The university {name} went to is {value}.", "{name} received a diploma from {value}."),
    "field": ("The academic field of {name} is {value}.", "{name} wrote a thesis in {value}."),
    "employer": ("The company {name} works for is {value}.", "{name} earns a salary from {value}."),
    "employer_city": ("The city where {name} works is {value}.", "{name} is based in {value}."),
}
