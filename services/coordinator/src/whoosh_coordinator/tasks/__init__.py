"""Tasks: the Task aggregate and its life (submitted, assigned, started, ended, retried);
its commands and projection live with the core in commands.py and projections.py."""
