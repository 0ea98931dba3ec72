"""Every front end but the Textual screens: the CLI, plain prompts, the Rich console view and the JSON view.

They import the core (hfwizard.operations above all); the core never imports them.
"""
