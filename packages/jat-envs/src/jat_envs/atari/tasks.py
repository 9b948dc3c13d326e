"""The 57 Atari tasks: task name -> (ALE game id, number of actions).

The data was collected with each game's minimal action set (``full_action_space=False``, the ALE v5
default), so a task has between 3 and 18 actions; the counts below are ``env.action_space.n`` of
``ALE/<Game>-v5`` in ale-py 0.12 (a test checks them against the emulator).
"""

from __future__ import annotations

#: task name (``atari-<name>``) -> (ALE game, number of actions of its minimal action set)
GAMES: dict[str, tuple[str, int]] = {
    "atari-alien": ("Alien", 18),
    "atari-amidar": ("Amidar", 10),
    "atari-assault": ("Assault", 7),
    "atari-asterix": ("Asterix", 9),
    "atari-asteroids": ("Asteroids", 14),
    "atari-atlantis": ("Atlantis", 4),
    "atari-bankheist": ("BankHeist", 18),
    "atari-battlezone": ("BattleZone", 18),
    "atari-beamrider": ("BeamRider", 9),
    "atari-berzerk": ("Berzerk", 18),
    "atari-bowling": ("Bowling", 6),
    "atari-boxing": ("Boxing", 18),
    "atari-breakout": ("Breakout", 4),
    "atari-centipede": ("Centipede", 18),
    "atari-choppercommand": ("ChopperCommand", 18),
    "atari-crazyclimber": ("CrazyClimber", 9),
    "atari-defender": ("Defender", 18),
    "atari-demonattack": ("DemonAttack", 6),
    "atari-doubledunk": ("DoubleDunk", 18),
    "atari-enduro": ("Enduro", 9),
    "atari-fishingderby": ("FishingDerby", 18),
    "atari-freeway": ("Freeway", 3),
    "atari-frostbite": ("Frostbite", 18),
    "atari-gopher": ("Gopher", 8),
    "atari-gravitar": ("Gravitar", 18),
    "atari-hero": ("Hero", 18),
    "atari-icehockey": ("IceHockey", 18),
    "atari-jamesbond": ("Jamesbond", 18),
    "atari-kangaroo": ("Kangaroo", 18),
    "atari-krull": ("Krull", 18),
    "atari-kungfumaster": ("KungFuMaster", 14),
    "atari-montezumarevenge": ("MontezumaRevenge", 18),
    "atari-mspacman": ("MsPacman", 9),
    "atari-namethisgame": ("NameThisGame", 6),
    "atari-phoenix": ("Phoenix", 8),
    "atari-pitfall": ("Pitfall", 18),
    "atari-pong": ("Pong", 6),
    "atari-privateeye": ("PrivateEye", 18),
    "atari-qbert": ("Qbert", 6),
    "atari-riverraid": ("Riverraid", 18),
    "atari-roadrunner": ("RoadRunner", 18),
    "atari-robotank": ("Robotank", 18),
    "atari-seaquest": ("Seaquest", 18),
    "atari-skiing": ("Skiing", 3),
    "atari-solaris": ("Solaris", 18),
    "atari-spaceinvaders": ("SpaceInvaders", 6),
    "atari-stargunner": ("StarGunner", 18),
    "atari-surround": ("Surround", 5),
    "atari-tennis": ("Tennis", 18),
    "atari-timepilot": ("TimePilot", 10),
    "atari-tutankham": ("Tutankham", 8),
    "atari-upndown": ("UpNDown", 6),
    "atari-venture": ("Venture", 18),
    "atari-videopinball": ("VideoPinball", 9),
    "atari-wizardofwor": ("WizardOfWor", 10),
    "atari-yarsrevenge": ("YarsRevenge", 18),
    "atari-zaxxon": ("Zaxxon", 18),
}


def env_id(task: str) -> str:
    """The gymnasium id of a task's game, e.g. ``"ALE/Pong-v5"``."""
    return f"ALE/{GAMES[task][0]}-v5"
