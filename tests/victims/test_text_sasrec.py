"""The text-based SASRec: items are their text (cold start), and an edited text moves its item at once."""

from __future__ import annotations

import pytest
import torch

from redteam.errors import ConfigError
from victims.text_sasrec import TextSASRec, TextSASRecParams


@pytest.fixture(scope="module")
def trained(tiny_split):
    """Trained without one item (the last): nobody bought it, so only its text can place it."""
    cold = tiny_split.dataset.n_items
    train = [seq[seq != cold] for seq in tiny_split.train]
    assert sum(int((seq == cold).sum()) for seq in tiny_split.train) > 0  # it was bought: the removal is real
    victim = TextSASRec(TextSASRecParams(epochs=2, hidden=16, batch_size=64))
    texts = list(tiny_split.dataset.item_text)
    victim.use_item_text(texts)
    valid = (tiny_split.valid_histories(), tiny_split.valid_targets())
    victim.fit(train, valid, n_items=tiny_split.dataset.n_items, seed=0)
    return victim, texts


def test_items_with_the_same_text_score_the_same_whatever_their_history(trained, tiny_split):
    victim, texts = trained
    histories = [h for h in tiny_split.test_histories() if 2 not in h][:20]  # item 2's vector changes below
    scores = victim.score(histories)
    assert scores.shape[1] == len(texts)
    # item 2 gets item 1's text: with no ID embedding the two are one vector, hence one score
    victim.set_item_text(2, texts[1])
    try:
        moved = victim.score(histories)
        assert torch.allclose(moved[:, 2], moved[:, 1], atol=1e-4)  # one text embedded alone vs in a batch
        assert torch.equal(moved[:, 3:], scores[:, 3:])  # every other item untouched
    finally:
        victim.set_item_text(2, texts[2])
    assert torch.allclose(victim.score(histories), scores, atol=1e-4)


def test_an_item_nobody_bought_is_scored_from_its_text_and_a_rewrite_lifts_it(trained, tiny_split):
    victim, texts = trained
    cold = tiny_split.dataset.n_items  # absent from the fixture's training data
    histories = [h for h in tiny_split.test_histories() if cold not in h][:50]
    scores = victim.score(histories)
    assert torch.isfinite(scores[:, cold]).all() and scores[:, cold].std() > 0  # placed by its text, per user
    top = scores[:, 1:].argmax(dim=1) + 1
    best = int(torch.mode(top).values)
    before = (scores[:, cold:cold + 1] > scores[:, 1:]).sum(dim=1)
    victim.set_item_text(cold, texts[best])
    try:
        after = victim.score(histories)
        assert torch.isfinite(after[:, cold]).all()
        assert torch.allclose(after[:, cold], after[:, best], atol=1e-4)  # the rewritten item scores as the best seller
        assert (after[:, cold:cold + 1] > after[:, 1:]).sum(dim=1).float().mean() > before.float().mean()
    finally:
        victim.set_item_text(cold, texts[cold])


def test_no_texts_is_a_config_error(tiny_split):
    from redteam.cache import ModelCache
    from redteam.fitting import fit_victim
    from redteam.scenario import ComponentSpec

    with pytest.raises(ConfigError, match="represents items by their text"):
        fit_victim(ComponentSpec(name="text_sasrec", epochs=1), train=tiny_split.train, valid=None,
                   n_items=tiny_split.dataset.n_items, seed=0, cache=ModelCache(None, enabled=False), item_text=None)
    with pytest.raises(ConfigError, match="item texts not given"):
        TextSASRec(TextSASRecParams(epochs=1)).fit(tiny_split.train, None, n_items=tiny_split.dataset.n_items, seed=0)


def test_text_sasrec_is_served_and_stolen_by_a_text_surrogate_only_with_the_texts(run_steal):
    code, results, result = run_steal("text_sasrec")
    assert code == 0, result
    clean, stolen = results["rows"]
    assert clean["victim"] == "text_sasrec" and stolen["info"]["extraction"][0]["surrogate"] == "text_sasrec"
    assert 0 < stolen["metrics"]["agreement@10"]["value"] <= 1
    code, _, refused = run_steal("text_sasrec", item_text=False, out="denied")
    assert code == 2 and "attacker.item_text: true" in refused.stderr


def test_item_table_is_the_text_input_so_embedding_perturbations_reach_the_scores(trained):
    victim, _ = trained
    model = victim.model.eval()
    assert model.item_table is model.text_vectors and model.item_table_name == "text_vectors"
    seqs = torch.tensor([[0, 3, 4, 5]])
    plain = model.logits(model.final_hidden(seqs))
    noise = 0.1 * torch.randn(model.text_vectors.shape, generator=torch.Generator().manual_seed(0))
    saved = model.text_vectors.clone()
    with torch.no_grad():
        model.text_vectors.add_(noise)
        perturbed = model.logits(model.final_hidden(seqs))
        model.text_vectors.copy_(saved)
    assert not torch.allclose(plain, perturbed)
    assert torch.equal(model.logits(model.final_hidden(seqs)), plain)


def test_a_text_surrogate_keeps_its_embeddings_in_the_runs_cache_folder(run_steal, tmp_path):
    """The attacker's text vectors go where the scenario keeps its cache (``runtime.cache_dir``),
    not to the default folder ($REDTEAM_CACHE_DIR, here ``tmp_path/cache``)."""
    chosen = tmp_path / "chosen"
    code, _, result = run_steal("text_sasrec", extra=f"runtime: {{cache_dir: {chosen}}}\n")
    assert code == 0, result
    assert any((chosen / "embeddings").rglob("*.npy")) and not (tmp_path / "cache" / "embeddings").exists()
