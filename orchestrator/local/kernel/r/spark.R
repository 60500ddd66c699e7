# Spark for R notebooks in the local workspace: there is none, and it says so in one line.
#
# Sourced by the executor after dbutils.R. The local workspace's Spark engine speaks
# Spark Connect to Python sessions only: SparkR has no Spark Connect client (and is deprecated
# since DBR 16) and sparklyr's needs a JVM-side or pysparklyr setup that is not here.
#
# * SparkR: library(), require() and requireNamespace() stop with one clear line instead of a
#   missing-package error.
# * sparklyr, which every Databricks Runtime includes, loads, so that test files which load it
#   and then skip without a connection (skip_if(!exists("sc"))) run: the real package where
#   this machine's R has it (it has no Debian package, and CRAN is not reachable from here),
#   else a stand-in attached as "package:sparklyr". Either way spark_connect() stops with one
#   line saying that R has no local Spark; spark_connection_is_open() is FALSE in the stand-in.
#   requireNamespace("sparklyr") stays truthful: FALSE without the real package.
# * library() of any package that is missing names the Debian package that provides it (the
#   local workspace does not download CRAN packages; see install.packages in packages.R).
#
# Every other package loads as usual. Base R only.

local({
  no_spark_message <- paste0(
    "the local workspace has no Spark for R notebooks ",
    "(Spark runs for Python notebooks only; see docs/spark.md)"
  )
  refuse <- function(name) {
    if (length(name) == 1 && identical(name, "SparkR")) {
      stop(sprintf("SparkR is not available: %s", no_spark_message), call. = FALSE)
    }
  }
  no_connect <- function(...) {
    stop(sprintf("spark_connect(): %s", no_spark_message), call. = FALSE)
  }

  # the real sparklyr, whenever its namespace loads (library, require, sparklyr::...)
  patch_sparklyr <- function(pkgname, pkgpath) {
    ns <- asNamespace("sparklyr")
    if (exists("spark_connect", envir = ns, inherits = FALSE)) {
      unlockBinding("spark_connect", ns)
      assign("spark_connect", no_connect, envir = ns)
      lockBinding("spark_connect", ns)
    }
  }
  setHook(packageEvent("sparklyr", "onLoad"), patch_sparklyr)

  sparklyr_installed <- function() nzchar(system.file(package = "sparklyr"))
  attach_stand_in <- function() {
    if ("package:sparklyr" %in% search()) {
      return(invisible(TRUE))
    }
    stand_in <- list(
      spark_connect = no_connect,
      spark_connection_is_open = function(sc) FALSE,
      spark_disconnect = function(sc, ...) invisible(NULL),
      spark_disconnect_all = function(...) invisible(0L),
      spark_install = function(...) {
        stop("spark_install(): the local workspace does not download Spark", call. = FALSE)
      }
    )
    attach(stand_in, name = "package:sparklyr", warn.conflicts = FALSE)
    message(
      "sparklyr: the local workspace's stand-in (sparklyr is not installed for this ",
      "machine's R and has no Debian package); spark_connect() fails: ", no_spark_message
    )
    invisible(TRUE)
  }

  # the Debian package of a package that is missing, for library()'s error
  debian_hint <- function(name) {
    if (exists(".orch_debian_hint", envir = globalenv(), mode = "function")) {
      get(".orch_debian_hint", envir = globalenv())(name)
    } else {
      ""
    }
  }

  package_name <- function(call) {
    arg <- call$package
    if (is.character(arg)) arg else deparse(arg)
  }
  load_package <- function(call, base_fun, base_name, character_only, frame) {
    name <- if (is.null(call$package)) NULL else if (character_only) eval(call$package, frame)
      else package_name(call)
    refuse(name)
    if (identical(name, "sparklyr") && base_name != "requireNamespace" &&
        !sparklyr_installed()) {
      attach_stand_in()
      return(invisible(if (base_name == "require") TRUE else .packages()))
    }
    call[[1]] <- base_fun
    if (base_name != "library" || is.null(name)) {
      return(eval(call, frame))
    }
    tryCatch(eval(call, frame), packageNotFoundError = function(e) {
      hint <- debian_hint(name)
      stop(paste0(conditionMessage(e), if (nzchar(hint)) paste0(": ", hint)), call. = FALSE)
    })
  }
  # The wrappers stay small and call load_package() with the byte-code JIT off: compiling it
  # on first use would cost every R notebook's first library() call some 20 ms; interpreted,
  # it runs in microseconds. The package's own code is byte-compiled at install either way.
  wrap <- function(base_fun, base_name) {
    force(base_fun)
    function(package, ...) {
      jit <- compiler::enableJIT(0)
      on.exit(compiler::enableJIT(jit))
      load_package(match.call(expand.dots = TRUE), base_fun, base_name,
                   isTRUE(list(...)$character.only) || base_name == "requireNamespace",
                   parent.frame())
    }
  }
  assign("library", wrap(base::library, "library"), envir = globalenv())
  assign("require", wrap(base::require, "require"), envir = globalenv())
  assign("requireNamespace", wrap(base::requireNamespace, "requireNamespace"), envir = globalenv())
})
