"""What every stage shares: input errors, command-line start-up, atomic writes, label codes and
volumes, multi-process agreement, progress output."""
