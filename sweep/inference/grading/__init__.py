"""Grading: answer extraction (``answers``), the MATH equivalence grader (``math_grader``) and the
graders by name (``graders``)."""
