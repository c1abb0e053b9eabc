"""The regulation's workflows: agencies' requests to the centre (R6–R10, R21, R22),
roles, incident tickets and API tokens."""
