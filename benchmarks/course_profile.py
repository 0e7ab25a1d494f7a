"""Where the course's minutes go: the table of RESULTS.md's "Where the minutes go", printed.

    python benchmarks/course_profile.py

It reads the committed notebook runs, ``results/runs/NN.json``, each written by
``python -m gensynth_course run NN --budget standard --json`` from an empty cache of the chapter's
own models with nothing else running: the chapter's minutes, the training seconds of every model
it trained, and the seconds of each of its sections (the code cells under each ``##`` heading,
timed by nbclient). It measures nothing itself: a profile is a cold run, which takes the
chapter's minutes, so record a chapter again with the command above after changing it.
"""

from gensynth_course.results import profile_section

if __name__ == "__main__":
    print(profile_section())
