# /Volumes, /dbfs and /Workspace paths for R's own file functions in the local workspace.
#
# Sourced by the executor after dbutils.R. On Databricks these are real paths of the driver
# (FUSE mounts): read.csv("/Volumes/main/default/v/x.csv") and readr::write_csv(df,
# "/dbfs/tmp/x.csv") just work. Here they are folders of the state dir:
#
#   /Volumes/<catalog>/<schema>/<volume>/x   $ORCH_DBFS_ROOT/Volumes/<catalog>/<schema>/<volume>/x
#   /dbfs/x                                   $ORCH_DBFS_ROOT/x
#   /Workspace/x                              $ORCH_WORKSPACE_ROOT/x
#
# as in Python notebooks (kernel/path_mapping.py). R has no hook for file names, so the base
# functions that take them are replaced, in the base namespace itself, by versions that map
# their path arguments first: every package sees them (readr and vroom find files through
# base::file.exists and base::normalizePath, read.csv and readRDS open them through base::file
# and base::gzfile). A path outside the three prefixes, or one whose ".." climbs out of its
# root, is passed as it was. What opens files from C by itself (data.table::fread's own
# reader, arrow) sees the real file system: map such a path with normalizePath() first.
# getwd() reads the local folder. Base R only.

local({
  roots <- list(
    "/Volumes" = function() {
      root <- Sys.getenv("ORCH_DBFS_ROOT", "")
      if (nzchar(root)) file.path(root, "Volumes") else ""
    },
    "/dbfs" = function() Sys.getenv("ORCH_DBFS_ROOT", ""),
    "/Workspace" = function() Sys.getenv("ORCH_WORKSPACE_ROOT", "")
  )

  # the part after a prefix, normalized ("/a/../b" is "/b"); NULL when ".." climbs above it
  normalized_rest <- function(rest) {
    out <- character(0)
    for (part in strsplit(rest, "/", fixed = TRUE)[[1]]) {
      if (part == "" || part == ".") next
      if (part == "..") {
        if (length(out) == 0) return(NULL)
        out <- out[-length(out)]
      } else {
        out <- c(out, part)
      }
    }
    if (length(out) == 0) "" else paste0("/", paste(out, collapse = "/"))
  }

  map_one <- function(path) {
    for (prefix in names(roots)) {
      if (identical(path, prefix) || startsWith(path, paste0(prefix, "/"))) {
        root <- roots[[prefix]]()
        rest <- normalized_rest(substring(path, nchar(prefix) + 1))
        if (!nzchar(root) || is.null(rest)) return(path)
        return(paste0(root, rest))
      }
    }
    path
  }

  # the common case, a path outside the prefixes, costs three startsWith over the vector
  map_paths <- function(x) {
    if (!is.character(x) || length(x) == 0) return(x)
    hit <- startsWith(x, "/Volumes") | startsWith(x, "/dbfs") | startsWith(x, "/Workspace")
    hit[is.na(hit)] <- FALSE
    if (!any(hit)) return(x)
    x[hit] <- vapply(x[hit], map_one, "", USE.NAMES = FALSE)
    x
  }

  replace_in_base <- function(name, value) {
    base <- baseenv()
    locked <- bindingIsLocked(name, base)
    if (locked) unlockBinding(name, base)
    assign(name, value, envir = base)
    if (locked) lockBinding(name, base)
  }

  # functions whose path arguments are named: the original body runs after they are mapped
  with_named <- list(
    file = "description", gzfile = "description", bzfile = "description",
    xzfile = "description", dir.exists = "paths", dir.create = "path",
    list.files = "path", dir = "path", list.dirs = "path", unlink = "x",
    normalizePath = "path", file.copy = c("from", "to"), file.rename = c("from", "to"),
    file.append = c("file1", "file2"), file.access = "names", setwd = "dir",
    Sys.glob = "paths"
  )
  for (name in names(with_named)) {
    original <- get(name, envir = baseenv())
    if (isTRUE(attr(original, "orch_mapped"))) next
    mapped <- original
    assignments <- lapply(with_named[[name]], function(arg) {
      call("<-", as.name(arg), as.call(list(map_paths, as.name(arg))))
    })
    body(mapped) <- as.call(c(as.name("{"), assignments, body(original)))
    attr(mapped, "orch_mapped") <- TRUE
    replace_in_base(name, mapped)
  }

  # functions that take their paths as ...: the c(...) of their body is mapped
  map_dots <- function(expr) {
    if (is.call(expr)) {
      if (identical(expr, quote(c(...)))) {
        return(as.call(list(map_paths, expr)))
      }
      for (i in seq_along(expr)[-1]) {
        if (!is.null(expr[[i]])) expr[[i]] <- map_dots(expr[[i]])
      }
    }
    expr
  }
  for (name in c("file.exists", "file.remove", "file.create", "file.info")) {
    original <- get(name, envir = baseenv())
    if (isTRUE(attr(original, "orch_mapped"))) next
    mapped <- original
    body(mapped) <- map_dots(body(original))
    attr(mapped, "orch_mapped") <- TRUE
    replace_in_base(name, mapped)
  }
})
