"""`smartgrid report`: per feeder, load, day-ahead forecast band, peak and alerts as report.png and report.html."""
