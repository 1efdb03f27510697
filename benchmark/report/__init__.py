"""Reports: the long summary (Markdown/CSV), paper tables (LaTeX/Markdown/CSV/JSON) and plots."""
