"""Emitters: render firmware_templates/ from the IR and the plan."""
