"""Official class names of the NTU RGB+D 60 / 120 action recognition datasets.

Written from the action list the dataset authors publish with the data
(``github.com/shahroudy/NTURGB-D``, README "Action Classes"; A1-A60 are NTU RGB+D 60,
A1-A120 NTU RGB+D 120). Only the trailing full stops are removed and the typographic
apostrophes of A109 / A117 are written as ASCII ``'`` so that text encoders see plain
ASCII. Index ``i`` is the 0-based label of action ``A(i+1)``.

These are the *official* names; methods that prompt a text encoder with other wordings
(e.g. PGFA's ``ntu_labelmap.txt``) carry their own class texts.
"""
from __future__ import annotations

NTU120_CLASSES: tuple[str, ...] = (
    # A1 - A10
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup",
    "throw", "sitting down", "standing up (from sitting position)", "clapping",
    # A11 - A20
    "reading", "writing", "tear up paper", "wear jacket", "take off jacket", "wear a shoe",
    "take off a shoe", "wear on glasses", "take off glasses", "put on a hat/cap",
    # A21 - A30
    "take off a hat/cap", "cheer up", "hand waving", "kicking something",
    "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard",
    # A31 - A40
    "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute",
    "put the palms together", "cross hands in front (say stop)",
    # A41 - A50
    "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache/heart pain)", "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person",
    # A51 - A60
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    # A61 - A70
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair",
    "thumb up", "thumb down",
    # A71 - A80
    "make ok sign", "make victory sign", "staple book", "counting money", "cutting nails",
    "cutting paper (using scissors)", "snapping fingers", "open bottle", "sniff (smell)",
    "squat down",
    # A81 - A90
    "toss a coin", "fold paper", "ball up paper", "play magic cube", "apply cream on face",
    "apply cream on hand back", "put on bag", "take off bag", "put something into a bag",
    "take something out of a bag",
    # A91 - A100
    "open a box", "move heavy objects", "shake fist", "throw up cap/hat",
    "hands up (both hands)", "cross arms", "arm circles", "arm swings", "running on the spot",
    "butt kicks (kick backward)",
    # A101 - A110
    "cross toe touch", "side kick", "yawn", "stretch oneself", "blow nose",
    "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff",
    "shoot at other person with a gun",
    # A111 - A120
    "step on foot", "high-five", "cheers and drink", "carry something with other person",
    "take a photo of other person", "follow other person", "whisper in other person's ear",
    "exchange things with other person",
    "support somebody with one's hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",
)

NTU60_CLASSES: tuple[str, ...] = NTU120_CLASSES[:60]

# Actions A50-A60 and A106-A120 are performed by two people ("mutual actions").
NTU_MUTUAL_ACTIONS: tuple[int, ...] = tuple(range(50, 61)) + tuple(range(106, 121))

assert len(NTU120_CLASSES) == 120 and len(set(NTU120_CLASSES)) == 120
