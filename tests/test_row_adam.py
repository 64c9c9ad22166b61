"""RowAdam: Adam over the rows of a table that have a gradient this step."""

import torch

from engine.npbg.row_adam import RowAdam


def test_row_adam_is_adam_on_the_rows_it_steps_and_leaves_the_others():
    torch.manual_seed(0)
    dense = torch.nn.Parameter(torch.randn(50, 4))
    rows = torch.nn.Parameter(dense.detach().clone())
    start = rows.detach().clone()
    opts = torch.optim.Adam([dense], lr=0.1), RowAdam([rows], lr=0.1)
    for _ in range(5):  # the same ten rows every step: Adam's exact updates
        for p, opt in zip((dense, rows), opts, strict=True):
            opt.zero_grad()
            (p[:10] ** 2).sum().backward()
            opt.step()
    assert torch.allclose(dense, rows, atol=1e-6)
    assert not torch.allclose(rows[:10], start[:10])
    # Rows seen once keep their moments while unseen: dense Adam goes on moving them with its
    # momentum, RowAdam leaves them where the last step put them.
    for p, opt in zip((dense, rows), opts, strict=True):
        opt.zero_grad()
        (p[20:25] ** 2).sum().backward()
        opt.step()
    before = rows.detach().clone()
    for p, opt in zip((dense, rows), opts, strict=True):
        opt.zero_grad()
        (p[:10] ** 2).sum().backward()
        opt.step()
    assert torch.equal(rows[10:], before[10:])
    assert not torch.equal(dense[20:25], rows[20:25])
    assert torch.equal(rows[25:], start[25:])
