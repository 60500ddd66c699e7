# install.packages() in R notebooks of the local workspace, which does not download CRAN
# packages.
#
# Sourced by the executor after dbutils.R. On Databricks install.packages() fetches from CRAN
# into a notebook-scoped library. Here CRAN is not reachable, and R's own install.packages()
# would only warn (a network failure is a warning in R), so the notebook would go on and fail
# later on a library() call. Instead:
#
# * a package this machine's R already has is a no-op that says so (with its version);
# * a package it does not have is an error naming it and the Debian package that provides it
#   (r-cran-<lowercase name>, looked up in this machine's apt cache), the way the runtime's
#   packages come to this machine (docs/r-packages.md);
# * local package files (repos = NULL) install as R does, into a notebook-scoped library in
#   the kernel's temporary folder (first on .libPaths(), gone with the kernel), never into a
#   library that outlives the run.
#
# It replaces install.packages in utils itself (namespace and attached package), so
# utils::install.packages() is this one too. .orch_debian_hint(name) is shared with spark.R
# (library()'s error). Base R only.

local({
  debian_hint <- function(name) {
    debian <- paste0("r-cran-", tolower(name))
    apt_cache <- Sys.which("apt-cache")
    if (!nzchar(apt_cache)) {
      return(sprintf("Debian's %s may provide it (apt-cache is not on this machine)", debian))
    }
    policy <- suppressWarnings(tryCatch(
      system2(apt_cache, c("policy", debian), stdout = TRUE, stderr = FALSE),
      error = function(e) character(0)
    ))
    candidate <- sub("^\\s*Candidate:\\s*", "", grep("Candidate:", policy, value = TRUE))
    if (length(candidate) == 0 || candidate[1] == "(none)") {
      return(sprintf("no Debian package provides it (%s is not in this machine's apt cache)",
                     debian))
    }
    sprintf("Debian's %s (%s) provides it: apt-get install %s", debian, candidate[1], debian)
  }
  assign(".orch_debian_hint", debian_hint, envir = globalenv())

  installed_version <- function(name) {
    path <- system.file(package = name)
    if (!nzchar(path)) {
      return(NULL)
    }
    as.character(utils::packageVersion(name, lib.loc = dirname(path)))
  }

  notebook_library <- function() {
    lib <- file.path(tempdir(), "notebook-r-library")
    if (!dir.exists(lib)) dir.create(lib, recursive = TRUE)
    if (!(normalizePath(lib) %in% normalizePath(.libPaths()))) .libPaths(c(lib, .libPaths()))
    lib
  }

  r_install_packages <- utils::install.packages
  if (isTRUE(attr(r_install_packages, "orch_install"))) {
    r_install_packages <- attr(r_install_packages, "orch_original")
  }
  install_packages <- function(pkgs, lib, repos = getOption("repos"), ...) {
    if (missing(pkgs) || length(pkgs) == 0) {
      stop("install.packages(): name the packages to install", call. = FALSE)
    }
    if (is.null(repos)) {
      # package files on this machine: R installs them, notebook-scoped
      if (missing(lib)) lib <- notebook_library()
      return(r_install_packages(pkgs, lib = lib, repos = NULL, ...))
    }
    missing_ones <- character(0)
    for (name in unique(as.character(pkgs))) {
      version <- installed_version(name)
      if (is.null(version)) {
        missing_ones <- c(missing_ones, name)
      } else {
        message(sprintf(paste0(
          "install.packages(): %s %s is already installed; nothing to do (the local workspace ",
          "does not download CRAN packages)"
        ), name, version))
      }
    }
    if (length(missing_ones) > 0) {
      reasons <- vapply(missing_ones, function(name) {
        sprintf("package '%s' is not available: %s", name, debian_hint(name))
      }, character(1))
      stop(paste0(
        "install.packages(): ", paste(reasons, collapse = "; "),
        ". The local workspace cannot reach CRAN: install R packages for this machine's R."
      ), call. = FALSE)
    }
    invisible(NULL)
  }
  # in utils itself, so utils::install.packages() is this one too, and ls() shows nothing new
  attr(install_packages, "orch_install") <- TRUE
  attr(install_packages, "orch_original") <- r_install_packages
  for (where in list(asNamespace("utils"), as.environment("package:utils"))) {
    locked <- bindingIsLocked("install.packages", where)
    if (locked) unlockBinding("install.packages", where)
    assign("install.packages", install_packages, envir = where)
    if (locked) lockBinding("install.packages", where)
  }
})
