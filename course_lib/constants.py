"""Names shared by every part of the course.

Item ids start at 1 so that 0 can mean "no item here" in padded histories.
"""

PAD_ID: int = 0
"""Item id used to pad histories to a common length. Never a real item."""
