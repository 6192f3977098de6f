"""The words the problem families draw from: names, goods, shops, towns, units ... and how amounts are
written."""

from __future__ import annotations

PEOPLE = [
    ("Maya", "she", "her"), ("Liam", "he", "his"), ("Aisha", "she", "her"), ("Tomás", "he", "his"),
    ("Priya", "she", "her"), ("Jonas", "he", "his"), ("Mei", "she", "her"), ("Kwame", "he", "his"),
    ("Sofia", "she", "her"), ("Omar", "he", "his"), ("Hana", "she", "her"), ("Diego", "he", "his"),
    ("Elena", "she", "her"), ("Ravi", "he", "his"), ("Zoe", "she", "her"), ("Felix", "he", "his"),
    ("Amara", "she", "her"), ("Noah", "he", "his"), ("Ingrid", "she", "her"), ("Kenji", "he", "his"),
    ("Lucia", "she", "her"), ("Samir", "he", "his"), ("Nadia", "she", "her"), ("Theo", "he", "his"),
    ("Grace", "she", "her"), ("Mateo", "he", "his"), ("Yara", "she", "her"), ("Owen", "he", "his"),
    ("Freya", "she", "her"), ("Arjun", "he", "his"), ("Leila", "she", "her"), ("Jack", "he", "his"),
]  # fmt: skip

# (singular, plural, price range in dollars)
GOODS = [
    ("notebook", "notebooks", (2, 6)), ("pen", "pens", (1, 3)), ("mug", "mugs", (4, 12)),
    ("T-shirt", "T-shirts", (8, 20)), ("plant", "plants", (3, 15)), ("book", "books", (6, 18)),
    ("candle", "candles", (2, 9)), ("puzzle", "puzzles", (7, 16)), ("scarf", "scarves", (9, 19)),
    ("bag of apples", "bags of apples", (3, 7)), ("loaf of bread", "loaves of bread", (2, 5)),
    ("jar of honey", "jars of honey", (5, 11)), ("pair of socks", "pairs of socks", (2, 8)),
    ("comic", "comics", (3, 9)), ("ball", "balls", (4, 14)), ("box of tea", "boxes of tea", (3, 10)),
]  # fmt: skip

SHOPS = ["market", "bookshop", "school fair", "corner store", "garden centre", "craft fair", "gift shop"]
WANTS = ["bike", "guitar", "tablet", "telescope", "skateboard", "camera", "keyboard", "tent", "drone"]
SPENDS = ["rent", "groceries", "bus fares", "lunches", "a phone plan", "books", "savings bonds"]
JOBS = ["at a café", "at the library", "as a tutor", "at a bike shop", "at the pool", "at a bakery"]
TOWNS = [
    "Ashford",
    "Bellmont",
    "Cedar Falls",
    "Dunmore",
    "Elmstead",
    "Fairview",
    "Glenrock",
    "Harwick",
    "Ivybridge",
]
VEHICLES = [("train", "km"), ("truck", "miles"), ("bus", "km"), ("cyclist", "km"), ("car", "miles")]
# (container singular, plural, item plural)
PACKS = [
    ("box", "boxes", "crayons"), ("bag", "bags", "marbles"), ("tin", "tins", "cookies"),
    ("packet", "packets", "stickers"), ("crate", "crates", "oranges"), ("jar", "jars", "buttons"),
    ("carton", "cartons", "eggs"), ("pack", "packs", "trading cards"),
]  # fmt: skip
FRIENDS = ["friends", "classmates", "cousins", "teammates", "neighbours"]
# (food plural, ingredient, unit)
RECIPES = [
    ("muffins", "flour", "cups"), ("pancakes", "milk", "cups"), ("cookies", "butter", "ounces"),
    ("loaves", "flour", "cups"), ("smoothies", "yogurt", "spoonfuls"), ("pizzas", "cheese", "ounces"),
    ("scones", "sugar", "tablespoons"), ("dumplings", "filling", "spoonfuls"),
]  # fmt: skip
COLLECTIONS = ["stamps", "seashells", "marbles", "stickers", "coins", "postcards", "pebbles", "badges"]
# (plant plural, produce plural)
CROPS = [
    ("tomato plants", "tomatoes"), ("pepper plants", "peppers"), ("apple trees", "baskets of apples"),
    ("strawberry plants", "strawberries"), ("bean plants", "pods"), ("squash plants", "squashes"),
]  # fmt: skip
# (activity as "does X each", unit plural)
HABITS = [
    ("reads", "pages"), ("runs", "kilometres"), ("practises the piano for", "minutes"),
    ("swims", "laps"), ("writes", "lines of code"), ("walks", "miles"), ("studies for", "minutes"),
]  # fmt: skip
SURNAMES = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "García",
    "Novak",
    "Haddad",
    "Brennan",
    "Mensah",
    "Rossi",
]
VENUES = ["zoo", "museum", "aquarium", "theme park", "cinema", "science centre"]


def money(n: int) -> str:
    return f"${n:,}"


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]
