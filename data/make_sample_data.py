"""Write the bundled sample data (data/sample_kg, data/sample_csqa, data/sample_swag).

Everything here was written by the kgfuse authors for tests and the demo; none of it is
copied from ConceptNet, CommonsenseQA or SWAG. The files follow the official formats so
the real loaders run on them. Run from anywhere:

    python data/make_sample_data.py

The output is deterministic (no randomness), so re-running reproduces the committed files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

# ------------------------------------------------------------------ the graph
# (ConceptNet relation, start term, end term, weight). Terms use ConceptNet URI spelling:
# underscores for spaces; an optional sense suffix ("/n", "/v/wn/body") as in the real dump.
EDGES = """
AtLocation plate/n cupboard 2.0
AtLocation plate dishwasher 1.0
AtLocation plate/n/wn/artifact table 1.0
AtLocation cup cupboard 2.0
AtLocation cupboard kitchen 3.0
AtLocation oven kitchen 3.0
UsedFor oven bake 2.0
UsedFor oven cook 1.0
AtLocation dishwasher kitchen 1.0
UsedFor dishwasher wash_dishes 2.0
HasPrerequisite wash_dishes water 1.0
UsedFor knife cut 3.0
UsedFor knife/n cut_bread 1.0
ReceivesAction bread cut 1.0
AtLocation knife kitchen 2.0
AtLocation knife drawer 1.0
UsedFor spoon eat_soup 2.0
UsedFor spoon stir 1.0
AtLocation spoon drawer 1.0
UsedFor pillow sleep 2.0
AtLocation pillow bed 2.0
UsedFor bucket carry_water 2.0
UsedFor ladder climb 2.0
AtLocation ladder garage 1.0
AtLocation milk refrigerator 3.0
AtLocation milk/n/wn/food fridge 1.0
Synonym fridge refrigerator 2.0
UsedFor refrigerator keep_food_cold 3.0
AtLocation refrigerator kitchen 2.0
HasProperty refrigerator cold 2.0
UsedFor closet store_clothes 2.0
AtLocation closet bedroom 1.0
UsedFor mailbox receive_mail 2.0
UsedFor desk write 1.0
AtLocation desk office 2.0
CapableOf ice melt 3.0
HasProperty ice cold 3.0
MadeOf ice water 2.0
Causes heat melt 2.0
HasProperty warm heat 1.0
Antonym freeze melt 2.0
Causes cold freeze 2.0
CapableOf bird sing 2.0
CapableOf plant grow 2.0
Causes bomb explode 1.0
AtLocation book library 3.0
AtLocation book/n bookshelf 2.0
UsedFor library borrow_book 2.0
UsedFor library/n read 1.0
AtLocation bread bakery 3.0
UsedFor bakery buy_bread 2.0
AtLocation stadium city 1.0
UsedFor stadium play_sports 2.0
AtLocation fish ocean 2.0
AtLocation fish water 3.0
CapableOf fish swim 3.0
HasA ocean water 2.0
UsedFor garage park_car 2.0
CausesDesire tired sleep 3.0
Causes sleep/v rest 1.0
MotivatedByGoal sleep tired 1.0
CapableOf person run 1.0
CapableOf person shout 1.0
CapableOf person cook 1.0
CapableOf person swim 1.0
CapableOf dog bark 3.0
IsA dog/n pet 2.0
IsA dog animal 2.0
CapableOf dog run 1.0
Desires dog bone 1.0
CapableOf cat purr 3.0
IsA cat pet 3.0
IsA cat/n/wn/animal animal 2.0
Desires cat fish 1.0
IsA cow animal 2.0
AtLocation cow farm 3.0
CreatedBy milk cow 2.0
CapableOf cow give_milk 2.0
IsA shark fish 2.0
AtLocation shark ocean 2.0
IsA horse animal 2.0
AtLocation horse farm 1.0
IsA eagle bird 2.0
CapableOf eagle fly 2.0
IsA snake animal 1.0
IsA spider animal 1.0
AtLocation desert sand 2.0
HasProperty desert dry 2.0
AtLocation cloud sky 3.0
Causes cloud rain 2.0
IsA rain water 2.0
AtLocation attic house 2.0
PartOf chimney house 1.0
UsedFor match light_fire 3.0
Causes match fire 2.0
HasPrerequisite fire fuel 1.0
Causes fire/n heat 2.0
Antonym fire water 1.0
Antonym ice fire 1.0
HasProperty snow cold 2.0
MadeOf snow water 3.0
HasProperty sand dry 1.0
AtLocation sand beach 2.0
CreatedBy honey bee 3.0
CapableOf bee/n make_honey 2.0
CapableOf bee fly 1.0
CreatedBy silk silkworm 2.0
MadeOf glass sand 1.0
MadeOf paper wood 2.0
Antonym hot cold 3.0
Antonym hot/a cool 1.0
Antonym warm cold 1.0
HasProperty fire hot 2.0
HasProperty apple red 1.0
HasProperty thunder loud 1.0
HasProperty car fast 1.0
PartOf wheel car 3.0
HasA car/n wheel 2.0
HasA car engine 2.0
PartOf leaf tree 2.0
PartOf page book 2.0
PartOf sole shoe 1.0
AtLocation car parking_lot 3.0
AtLocation car/n garage 2.0
AtLocation car road 2.0
UsedFor parking_lot park_car 2.0
AtLocation bed bedroom 3.0
UsedFor bed sleep 3.0
AtLocation table kitchen 1.0
UsedFor table eat 1.0
AtLocation sink kitchen 2.0
AtLocation sink bathroom 2.0
UsedFor road drive 2.0
AtLocation roof house 1.0
PartOf roof house 2.0
AtLocation shoe foot 3.0
UsedFor shoe walk 2.0
AtLocation hat head 2.0
AtLocation glove hand 2.0
AtLocation scarf neck 2.0
AtLocation necklace neck 2.0
CapableOf student learn 3.0
AtLocation student school 3.0
UsedFor school learn 2.0
UsedFor farm grow_food 2.0
AtLocation farm countryside 1.0
CapableOf carpenter build_house 1.0
CausesDesire thirsty drink_water 3.0
CausesDesire thirsty drink 2.0
UsedFor water drink 3.0
IsA water liquid 2.0
UsedFor soap wash 2.0
UsedFor glue stick 2.0
UsedFor oil cook 1.0
IsA juice drink 1.0
IsA coffee drink 1.0
UsedFor pen write 3.0
UsedFor pen/n/wn/artifact write_on_paper 1.0
UsedFor paper write 2.0
UsedFor fork eat 2.0
UsedFor hammer hit_nail 2.0
UsedFor brush paint 2.0
AtLocation pen desk 1.0
IsA banana fruit 3.0
IsA apple fruit 3.0
IsA orange fruit 2.0
HasProperty banana yellow 2.0
IsA fruit food 2.0
IsA meat food 2.0
IsA bread food 2.0
IsA cheese food 2.0
IsA soup food 1.0
MadeOf cheese milk 2.0
MadeOf bread flour 2.0
MadeOf table wood 3.0
MadeOf chair wood 2.0
MadeOf window glass 2.0
MadeOf shirt cloth 2.0
IsA wood material 1.0
CausesDesire hungry eat 3.0
CausesDesire hunger eat 2.0
Causes hungry cry 1.0
HasPrerequisite eat food 2.0
CapableOf person eat 1.0
CapableOf person read 1.0
CapableOf person dance 1.0
UsedFor light see 3.0
Antonym dark light 3.0
Antonym day night 2.0
AtLocation dark night 1.0
Causes sun light 2.0
IsA sunlight light 2.0
UsedFor salt season_food 2.0
Causes noise annoyance 1.0
HasA bird wing 3.0
UsedFor wing fly 3.0
CapableOf bird fly 3.0
AtLocation bird/n tree 2.0
AtLocation bird sky 1.0
HasA fish fin 2.0
UsedFor fin swim 2.0
HasA tree root 2.0
HasA cow horn 1.0
UsedFor wheel roll 1.0
AtLocation toothbrush bathroom 3.0
UsedFor toothbrush brush_teeth 3.0
AtLocation toilet bathroom 2.0
AtLocation bathtub bathroom 2.0
CapableOf baby cry 3.0
Desires baby milk 2.0
CapableOf person drive 1.0
CapableOf person vote 1.0
AtLocation bread/n store 1.0
UsedFor hospital heal 2.0
UsedFor bank keep_money 2.0
AtLocation animal zoo 2.0
Antonym wet dry 3.0
HasProperty water wet 2.0
HasProperty ocean wet 1.0
Antonym big small 2.0
Antonym loud quiet 2.0
CapableOf bird/n/wn/animal fly 1.0
CapableOf dog/n dig 1.0
CapableOf mole dig 2.0
CapableOf person walk 1.0
MadeOf snowman snow 2.0
IsA sugar food 1.0
AtLocation doctor hospital 3.0
CapableOf doctor heal 2.0
AtLocation nurse hospital 2.0
AtLocation farmer farm 2.0
AtLocation beach ocean 2.0
AtLocation forest tree 1.0
AtLocation miner mine 2.0
UsedFor umbrella rain 3.0
UsedFor umbrella/n keep_dry 2.0
Causes rain wet 2.0
Antonym sunshine rain 1.0
Causes fire burn 1.0
Causes hunger/n hungry 1.0
Causes boredom bored 1.0
AtLocation snake grass 1.0
AtLocation spider web 2.0
AtLocation eagle sky 1.0
UsedFor book read 3.0
UsedFor book/n learn 1.0
UsedFor drink quench_thirst 2.0
UsedFor shirt wear 2.0
UsedFor seed plant 1.0
Desires plant sunlight 3.0
Desires plant water 2.0
Causes sunlight grow 2.0
AtLocation plant garden 2.0
Antonym darkness light 2.0
UsedFor plastic make_bottle 1.0
AtLocation swim pool 2.0
UsedFor pool swim 3.0
AtLocation pool/n backyard 1.0
CapableOf person swim/v 1.0
AtLocation closet house 1.0
AtLocation attic/n house 1.0
IsA pet animal 2.0
UsedFor car drive 2.0
UsedFor car/n/wn/artifact transportation 1.0
HasSubevent cook heat_food 1.0
HasSubevent eat chew 2.0
HasFirstSubevent wash_dishes turn_on_water 1.0
HasLastSubevent cook serve_food 1.0
Entails snore sleep 1.0
MannerOf sprint run 1.0
InstanceOf paris city 1.0
DefinedAs bakery place_where_bread_is_made 1.0
LocatedNear kitchen dining_room 1.0
DistinctFrom cat dog 1.0
NotDesires cat water 2.0
NotCapableOf fish walk 2.0
NotCapableOf dog fly 2.0
NotDesires person pain 2.0
HasContext bake cooking 1.0
SimilarTo warm hot 1.0
RelatedTo kitchen cook 2.0
RelatedTo garden flower 2.0
RelatedTo stadium football 1.0
RelatedTo garage car 1.0
RelatedTo beach sand 1.0
RelatedTo wedding ring 1.0
RelatedTo ring finger 1.0
RelatedTo guitar music 2.0
RelatedTo movie theater 2.0
AtLocation movie theater 2.0
AtLocation seat theater 1.0
AtLocation office city 1.0
AtLocation submarine ocean 1.0
UsedFor mine dig 1.0
AtLocation cactus desert 2.0
DerivedFrom baker bake 1.0
FormOf books book 1.0
FormOf cars car 1.0
FormOf feet foot 1.0
FormOf wings wing 1.0
FormOf shoes shoe 1.0
FormOf bees bee 1.0
EtymologicallyRelatedTo cupboard cup 1.0
ExternalURL cat http://dbpedia.org/resource/Cat 1.0
CapableOf person sleep 1.0
CapableOf person learn 1.0
AtLocation person house 1.0
Desires person happiness 1.0
AtLocation kitchen house 3.0
AtLocation bedroom house 3.0
AtLocation bathroom house 3.0
AtLocation guitar music_store 1.0
UsedFor guitar play_music 2.0
CapableOf musician play_guitar 2.0
AtLocation wedding church 1.0
AtLocation ring finger 2.0
AtLocation coin pocket 1.0
AtLocation coin wallet 2.0
AtLocation feather bird 1.0
AtLocation smoke chimney 1.0
Causes fire smoke 2.0
UsedFor soap clean 1.0
AtLocation soap bathroom 2.0
HasProperty honey sweet 2.0
HasProperty sugar sweet 3.0
AtLocation ball stadium 1.0
AtLocation cloth closet 1.0
AtLocation leaf tree 2.0
AtLocation rock ground 1.0
AtLocation rock mountain 1.0
IsA storm weather 1.0
Causes storm rain 2.0
HasProperty storm loud 1.0
HasA storm thunder 1.0
HasA storm/n lightning 1.0
Causes lightning fire 1.0
"""

# ConceptNet datasets and sources, chosen per relation to look like the real dump.
_SOURCES = {
    "wordnet": ('"/d/wordnet/3.1"', '"cc:by/4.0"', '[{"contributor": "/s/resource/wordnet/rdf/3.1"}]'),
    "wiktionary": ('"/d/wiktionary/en"', '"cc:by-sa/4.0"',
                   '[{"contributor": "/s/resource/wiktionary/en", "process": "/s/process/wikiparsec/2"}]'),
    "omcs": ('"/d/conceptnet/4/en"', '"cc:by/4.0"',
             '[{"activity": "/s/activity/omcs/omcs1_possibly_free_text", "contributor": "/s/contributor/omcs/kgfuse"}]'),
    "verbosity": ('"/d/verbosity"', '"cc:by/4.0"',
                  '[{"contributor": "/s/resource/verbosity"}]'),
}
_DATASET_OF = {"FormOf": "wiktionary", "DerivedFrom": "wiktionary", "EtymologicallyRelatedTo": "wiktionary",
               "Synonym": "wordnet", "Antonym": "wiktionary", "IsA": "wordnet", "PartOf": "wordnet",
               "HasA": "verbosity", "ExternalURL": "wordnet", "InstanceOf": "wordnet", "DistinctFrom": "wiktionary"}
_SURFACE = {
    "AtLocation": "You are likely to find [[{s}]] in [[{e}]]",
    "UsedFor": "[[{s}]] is used for [[{e}]]",
    "CapableOf": "[[{s}]] can [[{e}]]",
    "IsA": "[[{s}]] is a type of [[{e}]]",
    "Causes": "[[{s}]] causes [[{e}]]",
    "CausesDesire": "[[{s}]] would make you want to [[{e}]]",
    "HasProperty": "[[{s}]] is [[{e}]]",
    "MadeOf": "[[{s}]] is made of [[{e}]]",
    "Desires": "[[{s}]] wants [[{e}]]",
}


def _uri(term: str) -> str:
    return term if term.startswith("http") else f"/c/en/{term}"


def _plain(term: str) -> str:
    return term.split("/")[0].replace("_", " ")


def assertion_lines() -> list[str]:
    lines = []
    for row in EDGES.strip().splitlines():
        rel, start, end, weight = row.split()
        su, eu = _uri(start), _uri(end)
        edge_uri = f"/a/[/r/{rel}/,{su}/,{eu}/]"
        ds, lic, sources = _SOURCES[_DATASET_OF.get(rel, "omcs")]
        info = f'{{"dataset": {ds}, "license": {lic}, "sources": {sources}'
        if rel in _SURFACE and _DATASET_OF.get(rel, "omcs") == "omcs":
            s, e = _plain(start), _plain(end)
            text = _SURFACE[rel].format(s=s, e=e)
            info += f', "surfaceEnd": {json.dumps(e)}, "surfaceStart": {json.dumps(s)}, "surfaceText": {json.dumps(text)}'
        info += f', "weight": {float(weight)}}}'
        json.loads(info)  # keep it valid JSON
        lines.append("\t".join((edge_uri, f"/r/{rel}", su, eu, info)))
    # Non-English and cross-language rows, as in the real dump (they must be skipped).
    other = [
        ("Synonym", "/c/fr/assiette/n", "/c/fr/plat", "/d/wiktionary/fr"),
        ("AtLocation", "/c/de/teller", "/c/de/schrank", "/d/conceptnet/4/de"),
        ("IsA", "/c/ja/犬", "/c/ja/動物", "/d/conceptnet/4/ja"),
        ("Synonym", "/c/en/plate/n", "/c/fr/assiette", "/d/wiktionary/fr"),
        ("Synonym", "/c/es/perro/n", "/c/en/dog", "/d/wiktionary/es"),
        ("RelatedTo", "/c/zh/猫", "/c/zh/宠物", "/d/conceptnet/4/zh"),
        ("AtLocation", "/c/pt/leite", "/c/pt/geladeira", "/d/conceptnet/4/pt"),
    ]
    for rel, su, eu, ds in other:
        info = (f'{{"dataset": "{ds}", "license": "cc:by-sa/4.0", "sources": '
                f'[{{"contributor": "/s/resource/wiktionary/fr", "process": "/s/process/wikiparsec/2"}}], "weight": 1.0}}')
        lines.append("\t".join((f"/a/[/r/{rel}/,{su}/,{eu}/]", f"/r/{rel}", su, eu, info)))
    lines.sort()  # the real dump is sorted by assertion URI
    return lines


# ------------------------------------------------------------------ CommonsenseQA-format questions
# (stem, question_concept, [5 choices], index of the correct choice)
CSQA_TRAIN = [
    ("Where would you put a plate after drying it?", "plate",
     ["cupboard", "oven", "garden", "bathtub", "roof"], 0),
    ("What would you use to cut bread?", "bread", ["knife", "spoon", "pillow", "bucket", "ladder"], 0),
    ("Where do people keep milk so that it stays cold?", "milk",
     ["refrigerator", "oven", "closet", "mailbox", "desk"], 0),
    ("What happens to ice when it gets warm?", "ice", ["melt", "freeze", "sing", "grow", "explode"], 0),
    ("Where can you borrow a book?", "book", ["library", "bakery", "stadium", "ocean", "garage"], 0),
    ("What does a tired person want to do?", "tired", ["sleep", "run", "shout", "cook", "swim"], 0),
    ("What sound does a dog make when it sees a stranger?", "dog", ["bark", "purr", "sing", "fly", "melt"], 0),
    ("Where does a fish live?", "fish", ["water", "desert", "sky", "attic", "chimney"], 0),
    ("What can you use to light a fire?", "fire", ["match", "ice", "water", "snow", "sand"], 0),
    ("What food do bees make?", "bee", ["honey", "milk", "silk", "glass", "paper"], 0),
    ("What is the opposite of hot?", "hot", ["cold", "warm", "red", "loud", "fast"], 0),
    ("A wheel is part of what?", "wheel", ["car", "tree", "cloud", "book", "shoe"], 0),
    ("What do you wear on your foot?", "foot", ["shoe", "hat", "glove", "scarf", "necklace"], 0),
    ("Where would you see many cars parked?", "car",
     ["parking lot", "bedroom", "ocean", "kitchen", "cloud"], 0),
    ("What does a student do at school?", "student", ["learn", "farm", "fish", "dig", "purr"], 0),
    ("Which pet can purr?", "pet", ["cat", "cow", "shark", "horse", "eagle"], 0),
    ("What does a thirsty person want?", "thirsty", ["drink water", "sand", "soap", "glue", "oil"], 0),
    ("Where do you sleep at night?", "sleep", ["bed", "table", "sink", "road", "roof"], 0),
    ("What falls from a cloud?", "cloud", ["rain", "rock", "leaf", "coin", "feather"], 0),
    ("What do you use to write on paper?", "write", ["pen", "fork", "hammer", "spoon", "brush"], 0),
    ("What kind of food is a banana?", "banana", ["fruit", "meat", "bread", "cheese", "soup"], 0),
    ("Where would you find a cow?", "cow", ["farm", "office", "library", "submarine", "theater"], 0),
    ("What is a table made of?", "table", ["wood", "glass", "water", "paper", "cloth"], 0),
    ("What does a hungry person want to do?", "hungry", ["eat", "sleep", "run", "read", "dance"], 0),
    ("What do you need to see in the dark?", "dark", ["light", "noise", "water", "salt", "shoe"], 0),
    ("What does a bird use to fly?", "bird", ["wing", "fin", "wheel", "root", "horn"], 0),
]
CSQA_DEV = [
    ("Where do you keep a toothbrush?", "toothbrush", ["bathroom", "garage", "oven", "car", "mailbox"], 0),
    ("What does a baby do when it is hungry?", "baby", ["cry", "drive", "read", "vote", "swim"], 0),
    ("Where would you buy bread?", "bread", ["bakery", "library", "hospital", "zoo", "bank"], 0),
    ("What is the opposite of wet?", "wet", ["dry", "big", "loud", "hot", "fast"], 0),
    ("What can birds do in the sky?", "bird", ["fly", "swim", "dig", "bark", "read"], 0),
    ("What is snow made of?", "snow", ["water", "sand", "sugar", "paper", "wood"], 0),
    ("Where are you likely to find a doctor?", "doctor", ["hospital", "farm", "beach", "forest", "mine"], 0),
    ("What does an umbrella keep you safe from?", "umbrella", ["rain", "fire", "hunger", "noise", "boredom"], 0),
    ("Which animal gives milk?", "milk", ["cow", "snake", "spider", "fish", "eagle"], 0),
    ("What do you do with a book?", "book", ["read", "eat", "drink", "wear", "plant"], 0),
    ("What does a plant need to grow?", "plant", ["sunlight", "darkness", "salt", "plastic", "noise"], 0),
    ("Where would a person go to swim?", "swim", ["pool", "desert", "library", "attic", "closet"], 0),
]

LABELS = "ABCDE"


def csqa_records(items: list, split: str) -> list[dict]:
    out = []
    for k, (stem, qc, choices, gold) in enumerate(items):
        # Rotate the gold answer through the five positions so the label is not a giveaway.
        shift = (k * 2 + (1 if split == "dev" else 0)) % 5
        order = choices[-shift:] + choices[:-shift] if shift else list(choices)
        gold_text = choices[gold]
        out.append({
            "answerKey": LABELS[order.index(gold_text)],
            "id": f"kgfuse-sample-{split}-{k:03d}",
            "question": {
                "question_concept": qc,
                "choices": [{"label": LABELS[i], "text": t} for i, t in enumerate(order)],
                "stem": stem,
            },
        })
    return out


# ------------------------------------------------------------------ SWAG-format questions
# (sent1, sent2, [4 endings], label)
SWAG = [
    ("She takes a plate out of the dishwasher.", "She", ["puts the plate in the cupboard.", "throws the plate at the sky.",
     "plants the plate in the garden.", "feeds the plate to the dog."], 0),
    ("The man is very tired after work.", "He", ["climbs the ladder to the roof.", "goes to bed and falls asleep.",
     "eats the pillow.", "swims in the refrigerator."], 1),
    ("A boy is thirsty after playing football.", "He", ["drinks a glass of water.", "reads the soap.",
     "puts on a scarf and sleeps.", "writes on the ice."], 0),
    ("Dark clouds fill the sky above the farm.", "The farmer", ["sings to the cow.", "opens the oven.",
     "watches the rain fall on the field.", "cuts the bread with a hammer."], 2),
    ("The ice cubes sit in the warm sun.", "They", ["bark at the dog.", "melt into water.",
     "fly to the library.", "grow into a tree."], 1),
    ("A student walks into the library.", "She", ["borrows a book to read.", "parks the car on the shelf.",
     "bakes bread in the bathtub.", "milks a cow at the desk."], 0),
    ("The dog sees a stranger at the door.", "It", ["purrs and climbs the chimney.", "writes a letter.",
     "barks loudly.", "melts on the floor."], 2),
    ("A woman is hungry at lunch time.", "She", ["eats a banana.", "sleeps in the sink.",
     "drives the pillow.", "paints the rain."], 0),
]
SWAG_COLUMNS = ["", "video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source",
                "ending0", "ending1", "ending2", "ending3", "label"]


def main() -> None:
    kg_dir = HERE / "sample_kg"
    kg_dir.mkdir(exist_ok=True)
    (kg_dir / "assertions.csv").write_text("\n".join(assertion_lines()) + "\n", encoding="utf-8")
    q_dir = HERE / "sample_csqa"
    q_dir.mkdir(exist_ok=True)
    for split, items in (("train", CSQA_TRAIN), ("dev", CSQA_DEV)):
        with open(q_dir / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for rec in csqa_records(items, split):
                f.write(json.dumps(rec) + "\n")
    s_dir = HERE / "sample_swag"
    s_dir.mkdir(exist_ok=True)
    with open(s_dir / "val.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(SWAG_COLUMNS)
        for k, (s1, s2, endings, label) in enumerate(SWAG):
            w.writerow([k, f"kgfuse-sample-{k:03d}", 9000 + k, f"{s1} {s2}", s1, s2, "gold", *endings, label])


if __name__ == "__main__":
    main()
