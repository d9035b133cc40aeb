"""The network and what trains it: uResNet, losses, train state and steps, device placement, Orbax
checkpoints."""
