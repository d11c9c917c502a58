"""One definition of "final": the model after the last update, evaluated once, used everywhere."""

import pytest

from tinygrad_softmax.lecture.training.train import train


@pytest.mark.parametrize(("dataset", "lr"), [("iris", 50.0), ("iris", 0.5), ("digits", 0.5)])
def test_the_last_epoch_line_and_the_summary_show_the_same_final_numbers(dataset, lr):
    lines: list[str] = []
    run = train(dataset, lr=lr, epochs=40, log=lines.append)
    last_epoch, summary = lines[-2], lines[-1]
    assert last_epoch.startswith("epoch 40/40")
    final_loss = f"{run.train_loss[-1]:.4f}"
    assert f"loss {final_loss}" in last_epoch and f"→ {final_loss}" in summary
    assert f"test {100 * run.test_accuracy[-1]:5.1f}%" in last_epoch
    assert f"test accuracy {100 * run.test_accuracy[-1]:.1f}%" in summary
    s = run.summary()
    assert s["final_train_loss"] == run.train_loss[-1] and s["final_test_accuracy"] == run.test_accuracy[-1]


def test_entry_k_of_the_history_is_the_model_after_k_steps():
    lines: list[str] = []
    run = train("iris", epochs=10, log=lines.append, log_every=5)
    assert len(run.train_loss) == 11
    assert [line.split(" [")[0] for line in lines[:-1]] == ["epoch  1/10", "epoch  5/10", "epoch 10/10"]
    assert f"loss {run.train_loss[5]:.4f}" in lines[1]  # after 5 steps, not the forward before the 5th
