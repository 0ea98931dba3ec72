"""The Textual wizard (shipped as hfwizard.screens): one screen per step over the draft profile."""
