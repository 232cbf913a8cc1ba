/* Supportwidget in wp-admin: the widget's command queue, the admin-bar item, and the fallback
 * shown when the support service does not answer. Loaded in the head, before the widget. */
( function ( w, d ) {
	'use strict';

	// A working service answers widget.js well within this; a hanging one never does.
	var PATIENCE = 6000;
	var panel = null;
	var shown = false;

	// The widget's command queue: calls made before it has loaded are replayed by it.
	w.supportwidget = w.supportwidget || function () {
		( w.supportwidget.q = w.supportwidget.q || [] ).push( arguments );
	};

	function loaded() {
		return !! ( w.supportwidget && w.supportwidget.loaded );
	}

	function fallback() {
		// The panel comes before the widget's tag: it exists whenever that tag can fail.
		panel = panel || d.getElementById( 'supportwidget-fallback' );
		if ( shown || loaded() || ! panel ) {
			return;
		}
		shown = true;
		panel.hidden = false;
		// A slow service may still answer: then the widget takes over again.
		var watch = w.setInterval( function () {
			if ( loaded() ) {
				panel.hidden = true;
				w.clearInterval( watch );
			}
		}, 1000 );
	}

	// widget.js refused or failed: its script element fires "error", which does not bubble.
	w.addEventListener( 'error', function ( event ) {
		if ( event.target && event.target.id === 'supportwidget-js' ) {
			fallback();
		}
	}, true );

	d.addEventListener( 'DOMContentLoaded', function () {
		w.setTimeout( fallback, PATIENCE );
		var close = d.querySelector( '#supportwidget-fallback .supportwidget-fallback-close' );
		if ( close ) {
			close.addEventListener( 'click', function () {
				close.parentNode.hidden = true;
			} );
		}
		var item = d.querySelector( '#wp-admin-bar-supportwidget > a' );
		if ( item ) {
			item.addEventListener( 'click', function ( event ) {
				// Without the widget the link opens the hosted form in a new tab.
				if ( loaded() ) {
					event.preventDefault();
					w.supportwidget( 'open' );
				}
			} );
		}
	} );
}( window, document ) );
