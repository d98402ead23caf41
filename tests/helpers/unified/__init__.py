"""A unified-test-format runner: the subset the Client Side Encryption key-management files need.

- :mod:`unified.matching`: the "Evaluating Matches" rules and their special operators;
- :mod:`unified.events`: command monitoring of client entities and expected-event matching;
- :mod:`unified.operations`: the entity and testRunner operations, results and expected errors;
- :mod:`unified.runner`: loading a file, runOnRequirements, entities, initialData, outcome;
- :mod:`unified.skips`: the cases that cannot pass here, and why.
"""
