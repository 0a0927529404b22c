"""The recorded runs: scripts that train and measure, too long for the notebook or the tests.

Run each from the project folder as a module; each writes its record into assets/:

    python -m benchmarks.fonts            # once, before generalisation/framing/ablation: @fontsource fonts via npm
    python -m benchmarks.speed_accuracy   # seed recipe against default recipe, 3 seeds -> benchmark.json
    python -m benchmarks.specialists      # two specialists or one merged model -> specialists.json
    python -m benchmarks.framing          # the dataset shortcut, and characters from elsewhere -> framing.json
    python -m benchmarks.ablation         # what each change of the default recipe is worth -> ablation.json
    python -m benchmarks.generalisation   # the shipped model through the command line -> generalisation.json
    python -m benchmarks.inference        # how fast one picture is read (no training, seconds)
"""
