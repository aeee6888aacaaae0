"""The host kind: the agent's own machine (CPU, memory, disks) via psutil."""
