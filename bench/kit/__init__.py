"""What the benchmarks and the tests share: the sample project and the command lines that build
it (:mod:`.sample`), Azurite (:mod:`.azurite`). The tests import from here; nothing here
imports the tests."""
