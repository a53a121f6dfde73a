import torch
from torch import nn
from sparsecore import Session

model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 2))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
data = [(torch.randn(32, 64), torch.randint(0, 2, (32,))) for _ in range(20)]
recipe = """
modifiers:
  - !GlobalMagnitudePruningModifier
    final_sparsity: 0.9
    start_epoch: 0
    end_epoch: 3
    update_frequency: 0.5
"""
with Session(recipe, model, optimizer, steps_per_epoch=len(data)) as session:
    for epoch in range(4):
        for x, y in data:
            session.batch_start()
            loss = session.loss(nn.functional.cross_entropy(model(x), y))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
weights = [m.weight for m in model if isinstance(m, nn.Linear)]
print(f"sparsity: {sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights):.4f}")
