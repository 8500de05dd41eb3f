"""Konsulta: secure consultations between Kela and municipalities."""
