"""compel's embeddings in the worker (``jobs.prompting``): they differ from the plain prompt's only where the
weights say; long prompts and BREAK become more windows; SDXL gets both encoders; SD3 gets the words."""
from __future__ import annotations

import pytest
import torch

from jobs.prompting import PromptEncoder
from tests.support import ROOT
from tests.support.tiny_pipelines import build_sd3, build_sdxl

PROMPT = "a red star in the top left, blue background"


@pytest.fixture(scope="module")
def tiny():
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(str(ROOT / "models" / "easel-tiny"), local_files_only=True)


def own_embeddings(pipe, prompt: str) -> torch.Tensor:
    positive, _ = pipe.encode_prompt(prompt, "cpu", 1, False)
    return positive


def test_weights_change_only_their_own_tokens(tiny) -> None:
    encoder = PromptEncoder(tiny)
    plain = own_embeddings(tiny, PROMPT)
    assert encoder.encode([PROMPT], None) == {"prompt": [PROMPT], "negative_prompt": None}  # the pipeline's own
    weighted = encoder.encode(["a (red:1.5) star in the top left, blue background", PROMPT], ["green"])
    changed = (weighted["prompt_embeds"][0] - plain[0]).abs().amax(-1) > 1e-6
    red = tiny.tokenizer(PROMPT).input_ids.index(tiny.tokenizer.convert_tokens_to_ids("red</w>"))
    assert changed.nonzero().flatten().tolist() == [red], "only the weighted word's embedding moves"
    assert torch.equal(weighted["prompt_embeds"][1], plain[0]), "a plain prompt beside it is encoded as alone"
    assert torch.equal(weighted["negative_prompt_embeds"][0], own_embeddings(tiny, "green")[0])
    down = encoder.encode(["a (red:0.5) star in the top left, blue background"], None)["prompt_embeds"][0]
    up = weighted["prompt_embeds"][0]
    assert (up[red] - plain[0][red]).norm() > 0 and not torch.allclose(down, plain[0])


def test_long_prompts_and_break_take_more_windows(tiny) -> None:
    encoder = PromptEncoder(tiny)
    window = tiny.tokenizer.model_max_length  # 32 on the bundled model, 77 on SD
    long = encoder.encode([", ".join([PROMPT] * 3), PROMPT], None)
    assert long["prompt_embeds"].shape[1] == 2 * window, "chunked, not cut"
    assert long["negative_prompt_embeds"].shape == long["prompt_embeds"].shape
    broken = encoder.encode(["a red star BREAK blue background"], None)["prompt_embeds"]
    assert broken.shape[1] == 2 * window
    assert torch.equal(broken[:, :window], own_embeddings(tiny, "a red star"))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_sdxl_gets_both_encoders_and_sd3_the_words() -> None:
    sdxl = build_sdxl()
    found = PromptEncoder(sdxl).encode(["a (red:1.4) star"], None)
    own, _, pooled, _ = sdxl.encode_prompt("a red star", device="cpu", do_classifier_free_guidance=False)
    assert found["prompt_embeds"].shape == own.shape and found["pooled_prompt_embeds"].shape == pooled.shape
    assert torch.count_nonzero(found["negative_prompt_embeds"]) == 0, "no negative prompt: SDXL's zeros"
    assert PromptEncoder(build_sd3()).encode(["a (red:1.4) star \\(big\\)"], ["(blur)"]) == {
        "prompt": ["a red star (big)"], "negative_prompt": ["blur"]}
