"""The running agent's core: scheduler, store, KPI evaluation, state, collector worker processes."""
