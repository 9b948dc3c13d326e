"""How completions of held-out text are scored: known words and word pairs, from the prompt's last word on,
bracketed by the unigram baseline's tokens and the held-out text's own continuation."""

import numpy as np
import pytest
from jat_core.tokenizer import build_tokenizer
from jat_train.evaluation.completions import (
    completion_scores,
    unigram_continuations,
    vocabulary,
    word_shares,
    words,
)
from jat_train.evaluation.report import text_table

TRAIN = ["Return the name of the file.", "Return a list of the files in the directory."]
KNOWN = vocabulary(TRAIN)


def test_vocabulary_holds_the_words_and_their_consecutive_pairs():
    known_words, pairs = KNOWN
    assert words("Return the NAME, of") == ["return", "the", "name", "of"]
    assert {"return", "name", "directory"} <= known_words and "tuple" not in known_words
    assert ("the", "name") in pairs and ("name", "the") not in pairs and ("file", "return") not in pairs


def test_word_shares_count_from_the_prompts_last_word():
    # "of" (the prompt's last word) + "the name": 3 words, all known; pairs (of, the), (the, name): both known
    assert word_shares(["Return a list of"], [" the name"], KNOWN) == {"words": 3, "known_words": 1.0, "known_pairs": 1.0}
    # a completion that starts inside a word glues onto it: "ofxyz" is not a word of the training text
    glued = word_shares(["Return a list of"], ["xyz the"], KNOWN)
    assert glued == {"words": 2, "known_words": 0.5, "known_pairs": 0.0}
    # known words in an unknown order: every word known, no pair
    shuffled = word_shares(["Return"], [" directory files name"], KNOWN)
    assert shuffled["known_words"] == 1.0 and shuffled["known_pairs"] == 0.0
    # several prompts pool their words; nothing written at all gives no share
    pooled = word_shares(["a", "a"], [" list", " tuple"], KNOWN)
    assert pooled["words"] == 4 and pooled["known_words"] == 0.75 and pooled["known_pairs"] == 0.5
    assert word_shares([], [], KNOWN) == {"words": 0, "known_words": None, "known_pairs": None}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(TRAIN * 5, vocab_size=300)


def test_unigram_continuations_are_seeded_and_never_special(tokenizer):
    vocab = len(tokenizer) + 4  # a model table may have rows past the tokenizer's vocabulary
    log_p = np.log(np.full(vocab, 1.0 / vocab))
    first = unigram_continuations(tokenizer, log_p, 5, 12, seed=3)
    assert first == unigram_continuations(tokenizer, log_p, 5, 12, seed=3) and len(first) == 5
    assert first != unigram_continuations(tokenizer, log_p, 5, 12, seed=4)
    assert not any(tokenizer.eos_token in text for text in first)
    # all the mass on one token: every draw is that token
    only = np.full(vocab, -np.inf)
    only[tokenizer.convert_tokens_to_ids("Ġthe")] = 0.0
    assert unigram_continuations(tokenizer, only, 2, 3) == [" the the the"] * 2


class Writer:
    """A stand-in model whose greedy completion is fixed and whose sampled one is another."""

    def complete(self, prompt, max_new_tokens, tokenizer, do_sample=False, **kwargs):
        assert max_new_tokens == 4 and ("generator" in kwargs) == do_sample
        return " files in the directory" if do_sample else " the name of a"


def test_completion_scores_bracket_the_model_between_unigram_and_held_out_text(tokenizer):
    held_out = ["too short", "Return a list of the files in the directory and more words after them"]
    log_p = np.log(np.full(len(tokenizer), 1.0 / len(tokenizer)))
    scores = completion_scores(Writer(), tokenizer, held_out, TRAIN, log_p, prompt_words=3, new_tokens=4)
    assert scores["prompts"] == 1 and scores["new_tokens"] == 4  # the short text gives no prompt
    (example,) = scores["examples"]
    assert example["prompt"] == "Return a list"
    assert example["reference"] == tokenizer.decode(tokenizer.encode(" of the files in the directory")[:4])
    assert scores["greedy"] == {"words": 5, "known_words": 1.0, "known_pairs": 0.5}  # list the name of a
    assert scores["sampled"]["words"] == 5 and scores["sampled"]["known_pairs"] == 0.75  # list files ... directory
    assert set(scores["unigram"]) == {"words", "known_words", "known_pairs"}
    table = text_table({"text_tasks": {"text-local": {
        "samples": 2, "tokens": 10, "perplexity": 5.0, "unigram_perplexity": 20.0,
        "completions": scores["examples"], "completion_words": {k: v for k, v in scores.items() if k != "examples"}}}})
    assert "| text-local | 1 | model, greedy | 5 | 1.000 | 0.500 |" in table
    assert "| held-out continuation |" in table and "| unigram baseline |" in table
