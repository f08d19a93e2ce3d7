"""Adjudication of disagreeing readings and the managers' review viewer (issues 13 and 14).

Which cases need an adjudicator is computed from the current results every time it is asked
(``selectors``), never stored as a trigger: a worker that dies between a score and a flag
loses nothing. Only the decision is stored (``readers.models.Consensus``). The adjudicator is
blind to the readers: the readings of a case are "Reader A/B/C", lettered per case from a
keyed hash, and no page or JSON of theirs carries a reader's name or id.
"""
